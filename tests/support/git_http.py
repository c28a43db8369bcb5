"""A real git host on loopback: `git http-backend` (CGI) behind a small HTTP server, serving bare
repositories and requiring a token; plus an "attacker" server that records whatever reaches it.

Both record every request with its headers, so a test can assert where the GitHub token went."""

from __future__ import annotations

import base64
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tests.support.repos import git

__all__ = ["AttackerServer", "GitHttpServer", "Seen"]

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _Recording(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            self.seen.append(Seen(handler.command, handler.path, headers))


class _Base:
    server: _Recording

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Recording(handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def seen(self) -> list[Seen]:
        with self.server.lock:
            return list(self.server.seen)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class _GitHandler(BaseHTTPRequestHandler):
    server: _Recording

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self.server.record(self)
        owner: GitHttpServer = self.server.owner  # type: ignore[attr-defined]
        body = _body(self) if self.command == "POST" else b""
        if self.headers.get("Authorization") != owner.expected_authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        parts = urlsplit(self.path)
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "REMOTE_USER": "x-access-token",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        proc = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitHttpServer(_Base):
    """Bare repositories under `root/<owner>/<name>.git`, over smart HTTP, for one token."""

    def __init__(self, root: Path, token: str) -> None:
        super().__init__(_GitHandler)
        self.root = root
        self.token = token
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        self.expected_authorization = f"Basic {basic}"

    def add_repo(self, owner: str, name: str, source: Path | None = None) -> Path:
        """A bare repository; with `source`, a mirror of it (its branches, e.g. main)."""
        path = self.root / owner / f"{name}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        if source is not None:
            git("clone", "--quiet", "--bare", str(source), str(path))
        else:
            git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
        git("config", "http.receivepack", "true", cwd=path)
        return path

    def __enter__(self) -> GitHttpServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _AttackerHandler(BaseHTTPRequestHandler):
    server: _Recording

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.server.record(self)
        if self.command == "POST":
            _body(self)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="give me your token"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer


class AttackerServer(_Base):
    """Answers every request with a 401 asking for credentials, and records it."""

    def __init__(self) -> None:
        super().__init__(_AttackerHandler)

    def __enter__(self) -> AttackerServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
