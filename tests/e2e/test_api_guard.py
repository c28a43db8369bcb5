"""The API surface against what a hostile web page or an unauthenticated client can send: another site's
POST, a DNS-rebinding Host, huge bodies before the token; the generated token and the file modes.

Every request goes to the real server on 127.0.0.1; "evil.example" is only a header value."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

from orchestrator.api.guard import DASHBOARD_TOKEN_PATH
from tests.conftest import TEST_PG, ServerFactory
from tests.support.server import Server

MIB = 1024 * 1024
CROSS_SITE = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}


def rss_kb(server: Server) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(server: Server, head: str, body: Iterable[bytes] = (), timeout: float = 30) -> bytes:
    """Sends `head` (and then `body`, as long as the server takes it) on one loopback connection; the
    answer's status line and headers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def chunked(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = b"x" * min(size, total - sent)
        sent += len(piece)
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def task_count(server: Server) -> int:
    return int(server.query("SELECT count(*) FROM tasks")[0][0])


# --- another site's page ------------------------------------------------------------------------------


def test_a_cross_site_post_is_refused_and_changes_nothing(server: Server) -> None:
    client = server.client
    assert client.get("/api/queue/settings").json()["paused"] is False
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    attempts = [
        # what a page's fetch(..., {mode: "no-cors", method: "POST"}) sends: no token, no preflight
        (anonymous, "POST", "/api/queue/settings", CROSS_SITE),
        (anonymous, "POST", "/api/queue/clear", CROSS_SITE),
        # the same with the token, as if the page had it: the origin alone is enough to refuse
        (client, "POST", "/api/queue/settings", CROSS_SITE),
        (client, "POST", "/api/tasks", {"Origin": "http://evil.example"}),
        (client, "POST", "/api/tasks", {"Sec-Fetch-Site": "cross-site"}),
        (client, "POST", "/api/tasks", {"Sec-Fetch-Site": "same-site"}),  # another port of localhost
        (client, "POST", "/api/tasks", {"Origin": "null"}),  # a sandboxed frame, a file:// page
        (client, "POST", "/api/tasks", {"Origin": f"http://localhost:{server.port + 1}"}),
        (client, "DELETE", "/api/tasks/t-x", CROSS_SITE),
        (client, "PATCH", "/api/tasks/t-x", CROSS_SITE),
    ]
    with anonymous:
        for who, method, path, headers in attempts:
            body = {"key": "paused", "value": True} if path.endswith("settings") else {"title": "evil"}
            answer = who.request(method, path, json=body, headers=headers)
            assert answer.status_code == 403, (method, path, headers, answer.text)
            assert "refused" in answer.json()["detail"] and "own dashboard" in answer.json()["detail"]
    assert client.get("/api/queue/settings").json()["paused"] is False, "the queue still runs"
    assert task_count(server) == 0, "no row written"

    own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    done = client.post("/api/tasks", json={"id": "t-own", "title": "from the dashboard"}, headers=own)
    assert done.status_code == 201, done.text
    assert client.get("/api/tasks", headers=CROSS_SITE).status_code == 200, "reads change nothing"


# --- DNS rebinding --------------------------------------------------------------------------------------


ROUTES = [
    "/",
    "/static/app.js",
    "/api/health",
    DASHBOARD_TOKEN_PATH,
    "/api/agents",
    "/api/queue",
    "/openapi.json",
    "/docs",
    "/metrics",
]


def test_a_rebinding_host_is_refused_on_every_route(server: Server) -> None:
    # a page of evil.example whose name now resolves to 127.0.0.1: same-origin for the browser
    for host in (f"evil.example:{server.port}", "evil.example", f"127.0.0.1.evil.example:{server.port}"):
        rebound = {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        for path in ROUTES:
            for auth in (server.headers, {}):
                answer = httpx.get(server.url + path, headers={**rebound, **auth})
                assert answer.status_code == 421, (host, path, answer.status_code, answer.text[:200])
                assert "ALLOWED_HOSTS" in answer.json()["detail"]
                assert answer.headers["x-content-type-options"] == "nosniff", "echoes the Host: not as HTML"
                assert server.token not in answer.text
        refused = server.client.post("/api/queue/clear", headers=rebound)
        assert refused.status_code == 421
    assert raw_request(server, "GET /api/health HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 421"), "no Host"
    for good in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}", "localhost"):
        assert server.client.get("/api/agents", headers={"Host": good}).status_code == 200, good


def test_allowed_hosts_adds_names(make_server: ServerFactory) -> None:
    server = make_server(ALLOWED_HOSTS="orchestrator.test, proxy.test:8443")
    for host in ("orchestrator.test", "orchestrator.test:80", "proxy.test:8443"):
        assert server.client.get("/api/agents", headers={"Host": host}).status_code == 200, host
    assert server.client.get("/api/agents", headers={"Host": "proxy.test:8444"}).status_code == 421
    # an extra name is not the loopback origin: the dashboard's token is not handed out through it
    via_name = {"Host": "orchestrator.test", "Sec-Fetch-Site": "same-origin"}
    assert httpx.get(server.url + DASHBOARD_TOKEN_PATH, headers=via_name).status_code == 403


# --- bodies before the token ----------------------------------------------------------------------------


def test_a_64_mb_body_without_the_token_is_refused_unread(server: Server) -> None:
    before = rss_kb(server)
    head = f"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
    # announced: the answer comes before a byte of the body is sent
    answer = raw_request(server, head + f"Content-Length: {64 * MIB}\r\n\r\n", timeout=10)
    assert status_of(answer) == 401, answer
    # streamed in chunks, sent in full, three times over
    for _ in range(3):
        answer = raw_request(server, head + "Transfer-Encoding: chunked\r\n\r\n", chunked(64 * MIB))
        assert status_of(answer) == 401, answer
    grown = rss_kb(server) - before
    assert grown < 5 * 1024, f"the server grew by {grown} kB"
    assert task_count(server) == 0
    assert server.client.get("/api/health").json()["status"] == "ok"


def test_an_oversized_body_with_the_token_gets_413_naming_the_limit(make_server: ServerFactory) -> None:
    limit = 64 * 1024
    server = make_server(API_MAX_BODY_BYTES=str(limit))
    assert server.token
    head = (
        f"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
    )
    before = rss_kb(server)
    answer = raw_request(server, head + f"Content-Length: {64 * MIB}\r\n\r\n", timeout=10)
    assert status_of(answer) == 413, answer  # at once: the body was never sent
    answer = raw_request(server, head + "Transfer-Encoding: chunked\r\n\r\n", chunked(64 * MIB))
    assert status_of(answer) == 413, answer
    assert rss_kb(server) - before < 5 * 1024

    def streamed(size: int) -> Iterator[bytes]:  # httpx sends a generator in chunks, length unknown
        yield b'{"title": "streamed", "description": "'
        for _ in range(size // 1024):
            yield b"y" * 1024
        yield b'"}'

    message = f"request body over the limit of {limit} bytes (API_MAX_BODY_BYTES)"
    json_type = {"Content-Type": "application/json"}
    refused = server.client.post("/api/tasks", content=streamed(2 * limit), headers=json_type)
    assert refused.status_code == 413 and refused.json() == {"detail": message}
    announced = server.client.post("/api/tasks", json={"title": "t", "description": "z" * (limit + 1)})
    assert announced.status_code == 413 and announced.json() == {"detail": message}
    assert task_count(server) == 0
    under = server.client.post("/api/tasks", content=streamed(limit - 1024), headers=json_type)
    assert under.status_code == 201, under.text
    assert task_count(server) == 1


# --- the generated token ------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_generated_token_and_the_private_files(make_server: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # an install from before: opened up
    server = make_server(data_dir=data)
    token_file = data / "api-token"
    assert server.token and token_file.read_text().strip() == server.token
    assert len(server.token) >= 32
    assert mode(token_file) == 0o600
    for directory in (data, data / "runs", data / "workspaces", data / "events"):
        assert mode(directory) == 0o700, directory
    assert server.client.post("/api/tasks", json={"title": "a write"}).status_code == 201
    if TEST_PG is None:  # the WAL exists once something was written
        for name in ("orchestrator.db", "orchestrator.db-wal", "orchestrator.db-shm"):
            assert mode(data / name) == 0o600, name

    assert httpx.get(server.url + "/api/agents").status_code == 401, "the token is required"
    server.stop()
    server.start()
    assert token_file.read_text().strip() == server.token, "reused after a restart"
    assert server.client.get("/api/agents").status_code == 200

    secret = server.token.encode()
    assert secret not in server.log().encode(), "the token is not logged"
    for name in ("orchestrator.db", "orchestrator.db-wal"):
        path = data / name
        if path.exists():
            assert secret not in path.read_bytes(), f"the token is not stored in {name}"


def test_a_token_set_by_the_operator_replaces_the_generated_one(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = make_server(data_dir=data)
    generated = first.token
    first.stop()
    second = make_server(data_dir=data, ORCHESTRATOR_API_TOKEN="operator-token-0123456789")
    assert not (data / "api-token").exists(), "no stale token file left for the CLI to send"
    assert (
        httpx.get(second.url + "/api/agents", headers={"Authorization": f"Bearer {generated}"}).status_code
        == 401
    )
    assert second.client.get("/api/agents").status_code == 200
    own = {"Sec-Fetch-Site": "same-origin"}
    assert httpx.get(second.url + DASHBOARD_TOKEN_PATH, headers=own).status_code == 404


def test_the_dashboard_token_is_not_handed_out_where_agents_share_the_hosts_network(
    make_server,  # type: ignore[no-untyped-def]
) -> None:
    """An unfiltered agent can send the page's headers as well as the page can."""
    server = make_server(AGENT_SANDBOX="none")
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    refused = httpx.get(server.url + DASHBOARD_TOKEN_PATH, headers=own)
    assert refused.status_code == 403 and "share the host's network" in refused.text
    assert server.token not in refused.text


def test_the_dashboard_token_is_given_to_the_dashboards_own_page_only(server: Server) -> None:
    url = server.url + DASHBOARD_TOKEN_PATH
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    given = httpx.get(url, headers=own)
    assert given.status_code == 200 and given.json() == {"token": server.token}
    assert given.headers["cache-control"] == "no-store"
    assert given.headers["cross-origin-resource-policy"] == "same-origin"
    assert "access-control-allow-origin" not in given.headers
    for headers in (
        {},  # no browser said it is the page's own request
        {"Sec-Fetch-Site": "cross-site"},  # <script src> or fetch from another site
        {"Sec-Fetch-Site": "same-site"},  # another port on localhost
        {"Sec-Fetch-Site": "none"},  # typed in the address bar
        {**own, "X-Forwarded-For": "203.0.113.9"},  # through a proxy
        {**own, "Forwarded": "for=203.0.113.9"},
    ):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert server.token not in refused.text
    assert httpx.get(url, headers={**own, "Host": f"evil.example:{server.port}"}).status_code == 421


# --- what anonymous callers see -----------------------------------------------------------------------


def test_docs_and_openapi_need_the_token_and_health_says_little(server: Server) -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect", "/no-such-route"):
        answer = httpx.get(server.url + path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == "Bearer"
    assert server.client.get("/openapi.json").json()["info"]["title"] == "orchestrator"
    assert server.client.get("/docs").status_code == 200

    anonymous = httpx.get(server.url + "/api/health")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    detailed = server.client.get("/api/health").json()
    assert detailed["instance_id"] and detailed["database"] == "ok" and "claude" in detailed
    wrong = httpx.get(server.url + "/api/health", headers={"Authorization": "Bearer wrong"})
    assert wrong.json() == {"status": "ok"}


def test_refusals_come_before_the_body_is_read_and_cost_no_time(server: Server) -> None:
    """A client that announces a body and never sends it gets its answer at once (no read, no wait)."""
    head = f"POST /api/agents/spawn HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 100\r\n"
    start = time.monotonic()
    assert status_of(raw_request(server, head + "\r\n", timeout=5)) == 401
    evil = head.replace(f"127.0.0.1:{server.port}", "evil.example")
    assert status_of(raw_request(server, evil + "\r\n", timeout=5)) == 421
    cross = head + "Origin: http://evil.example\r\n"
    assert status_of(raw_request(server, cross + "\r\n", timeout=5)) == 403
    assert time.monotonic() - start < 5
