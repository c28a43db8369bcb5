"""A fake Anthropic Messages API on loopback, scripted per scenario, for driving the real `claude` CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "FakeAnthropic",
    "Step",
    "TextBlock",
    "ToolUseBlock",
    "error",
    "stall",
    "text",
    "tool",
    "tools",
]

DEFAULT_MODEL = "claude-opus-5-5"
MODELS = ("claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5")

_MARKER_RE = re.compile(r"\[\[scenario:([A-Za-z0-9_.-]+)\]\]")
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_CHUNK = 24

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ToolUseBlock:
    name: str
    input: dict[str, Any]


Block = TextBlock | ToolUseBlock


@dataclass(frozen=True)
class Step:
    """One scripted model reply. Build with `text`, `tool`, `tools`, `error` or `stall`."""

    kind: Literal["message", "error", "stall"]
    blocks: tuple[Block, ...] = ()
    stop_reason: str = "end_turn"
    input_tokens: int = 100
    output_tokens: int = 20
    delay: float = 0.0
    status: int = 200
    message: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    times: int | None = None


def text(s: str, *, input_tokens: int = 100, output_tokens: int = 20, delay: float = 0.0) -> Step:
    return Step(
        "message",
        (TextBlock(s),),
        stop_reason="end_turn",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        delay=delay,
    )


def tool(name: str, input: dict[str, Any], *, text: str | None = None, delay: float = 0.0) -> Step:
    return tools([(name, input)], text=text, delay=delay)


def tools(calls: list[tuple[str, dict[str, Any]]], *, text: str | None = None, delay: float = 0.0) -> Step:
    if not calls:
        raise ValueError("tools() needs at least one call")
    blocks: list[Block] = [] if text is None else [TextBlock(text)]
    blocks.extend(ToolUseBlock(name, dict(args)) for name, args in calls)
    return Step("message", tuple(blocks), stop_reason="tool_use", delay=delay)


def error(
    status: int,
    message: str = "fake injected error",
    *,
    retry_after: float | None = None,
    times: int | None = None,
) -> Step:
    """An HTTP error reply. With `times`, it is served that many times, then skipped."""
    if status < 400:
        raise ValueError(f"error status must be >= 400, got {status}")
    if times is not None and times < 1:
        raise ValueError("times must be >= 1 or None")
    return Step("error", status=status, message=message, retry_after=retry_after, times=times)


def stall(seconds: float, *, times: int | None = None) -> Step:
    """Headers and message_start, then silence for `seconds`, then the connection is dropped."""
    if times is not None and times < 1:
        raise ValueError("times must be >= 1 or None")
    return Step("stall", seconds=seconds, times=times)


_DONE = text("done")
_OK = text("ok")


def error_type_for(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _find_marker(messages: Any) -> str | None:
    for s in _strings(messages):
        match = _MARKER_RE.search(s)
        if match is not None:
            return match.group(1)
    return None


def _count_assistant(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def _chunks(s: str) -> list[str]:
    return [s[i : i + _CHUNK] for i in range(0, len(s), _CHUNK)] or [""]


def _new_id(prefix: str) -> str:
    return f"{prefix}_fake_{secrets.token_hex(12)}"


_CWD_RE = re.compile(r"Primary working directory: (\S+)")
CWD = "{{cwd}}"


def _with_cwd(step: Step, body: dict[str, Any]) -> Step:
    """Tool inputs may say {{cwd}}: the agent's working directory, as the CLI tells the model."""
    if not any(isinstance(b, ToolUseBlock) and CWD in json.dumps(b.input) for b in step.blocks):
        return step
    cwd = next((m.group(1) for s in _strings(body) if (m := _CWD_RE.search(s))), None)
    if cwd is None:
        return step
    blocks = tuple(
        ToolUseBlock(b.name, json.loads(json.dumps(b.input).replace(CWD, cwd)))
        if isinstance(b, ToolUseBlock)
        else b
        for b in step.blocks
    )
    return dataclasses.replace(step, blocks=blocks)


_SAID_RE = re.compile(r"\{\{said:([^}]+)\}\}")


def _said_line(prefix: str, body: dict[str, Any]) -> str | None:
    """The last line of the request's messages that starts with `prefix` (leading blanks ignored): the
    latest the agent was told."""
    found = None
    for s in _strings(body.get("messages")):
        for line in s.splitlines():
            if line.strip().startswith(prefix):
                found = line.strip()
    return found


def _replace_said(value: Any, body: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _SAID_RE.sub(lambda m: _said_line(m.group(1), body) or m.group(0), value)
    if isinstance(value, dict):
        return {k: _replace_said(v, body) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_said(v, body) for v in value]
    return value


def _with_said(step: Step, body: dict[str, Any]) -> Step:
    """Tool inputs may say {{said:PREFIX}}: the last line the conversation gave starting with PREFIX (a
    command the prompt told the agent to run, word for word), so a script follows the prompt's words."""
    if not any(isinstance(b, ToolUseBlock) and "{{said:" in json.dumps(b.input) for b in step.blocks):
        return step
    blocks = tuple(
        ToolUseBlock(b.name, _replace_said(b.input, body)) if isinstance(b, ToolUseBlock) else b
        for b in step.blocks
    )
    return dataclasses.replace(step, blocks=blocks)


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": _new_id("toolu"), "name": block.name, "input": block.input}


@dataclass
class _Scenario:
    name: str
    steps: list[Step]
    repeat_last: bool
    served: dict[int, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def _exhausted(self, i: int, step: Step) -> bool:
        return step.times is not None and self.served.get(i, 0) >= step.times

    def choose(self, index: int) -> Step:
        live = [(i, s) for i, s in enumerate(self.steps) if not self._exhausted(i, s)]
        if index < len(live):
            i, step = live[index]
        elif self.repeat_last and live:
            i, step = live[-1]
        else:
            return _DONE
        self.served[i] = self.served.get(i, 0) + 1
        return step


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.fake._stopping.is_set():
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"

    @property
    def fake(self) -> FakeAnthropic:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/v1/models":
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in MODELS
            ]
            body = {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
            self._send_json(200, body)
        else:
            self._send_error(404, f"Not found: {self.path}")

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            self._send_error(404, f"Not found: {self.path}")
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send_error(400, "request body must be a JSON object")
            return
        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": max(1, len(raw) // 4)})
            return
        step = self.fake._dispatch(body, self.headers.get("x-claude-code-session-id") or "")
        self._serve(step, model=str(body.get("model") or DEFAULT_MODEL), stream=body.get("stream") is True)

    def _serve(self, step: Step, *, model: str, stream: bool) -> None:
        if step.kind == "error":
            headers = {} if step.retry_after is None else {"Retry-After": f"{step.retry_after:g}"}
            self._send_error(step.status, step.message, headers)
            return
        if step.delay > 0 and self.fake._stopping.wait(step.delay):
            self.close_connection = True
            return
        msg_id = _new_id("msg")
        if not stream:
            if step.kind == "stall":
                self.fake._stopping.wait(step.seconds)
                self.close_connection = True
                return
            self._send_json(200, self._full_message(step, msg_id, model))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", _new_id("req"))
        self.end_headers()
        message: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": step.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        }
        self._event({"type": "message_start", "message": message})
        if step.kind == "stall":
            self.fake._stopping.wait(step.seconds)
            self.close_connection = True
            return
        self._event({"type": "ping"})
        for index, block in enumerate(step.blocks):
            self._stream_block(index, _block_json(block))
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": step.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": step.output_tokens},
            },
        )
        self._event({"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")

    def _stream_block(self, index: int, block: dict[str, Any]) -> None:
        deltas: list[dict[str, Any]]
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            partial = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": c} for c in _chunks(partial)]
        self._event({"type": "content_block_start", "index": index, "content_block": start})
        for delta in deltas:
            self._event({"type": "content_block_delta", "index": index, "delta": delta})
        self._event({"type": "content_block_stop", "index": index})

    def _event(self, data: dict[str, Any]) -> None:
        payload = f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

    @staticmethod
    def _full_message(step: Step, msg_id: str, model: str) -> dict[str, Any]:
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [_block_json(b) for b in step.blocks],
            "stop_reason": step.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": step.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": step.output_tokens,
            },
        }

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _new_id("req"))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"type": "error", "error": {"type": error_type_for(status), "message": message}}
        self._send_json(status, body, headers)


class FakeAnthropic:
    """Serves scripted Messages API replies on 127.0.0.1; scenarios are picked by a marker in the prompt."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._scenarios: dict[str, _Scenario] = {}
        self._unmatched: list[dict[str, Any]] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._roles: dict[str, dict[str, list[list[Step]]]] = {}
        self._sessions: dict[str, dict[str, tuple[str, int]]] = {}

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeAnthropic already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeAnthropic:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAnthropic not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def scenario(self, steps: list[Step], *, repeat_last: bool = False, name: str | None = None) -> str:
        """Register scripted replies; returns the marker to put in the agent's prompt."""
        with self._lock:
            if name is None:
                self._counter += 1
                name = f"s{self._counter}-{secrets.token_hex(4)}"
            elif not _NAME_RE.fullmatch(name):
                raise ValueError(f"scenario name must match {_NAME_RE.pattern}: {name!r}")
            if name in self._scenarios:
                raise ValueError(f"scenario {name!r} already registered")
            self._scenarios[name] = _Scenario(name, list(steps), repeat_last)
        return f"[[scenario:{name}]]"

    def requests_for(self, marker_or_name: str) -> list[dict[str, Any]]:
        """Parsed JSON bodies of /v1/messages requests received for a scenario, oldest first."""
        match = _MARKER_RE.fullmatch(marker_or_name)
        name = match.group(1) if match is not None else marker_or_name
        with self._lock:
            if name not in self._scenarios:
                raise KeyError(f"unknown scenario {name!r}")
            return list(self._scenarios[name].requests)

    def unmatched_requests(self) -> list[dict[str, Any]]:
        """Bodies of /v1/messages requests that carried no known scenario marker."""
        with self._lock:
            return list(self._unmatched)

    def roles(self, conversations: dict[str, list[list[Step]]]) -> str:
        """One marker for a whole workflow: the first of `conversations`' keys found in the request picks
        the role; each new session of that role takes the role's next conversation."""
        marker = self.scenario([])
        name = marker[len("[[scenario:") : -2]
        with self._lock:
            self._roles[name] = {key: list(convs) for key, convs in conversations.items()}
            self._sessions[name] = {}
        return marker

    def _routed(self, name: str, messages: Any, session: str) -> str:
        routes = self._roles.get(name)
        if routes is None:
            return name
        sessions = self._sessions[name]
        if session not in sessions:
            text = "\n".join(_strings(messages))
            role = next((key for key in routes if key in text), None)
            if role is None:
                return name
            taken = sum(1 for r, _ in sessions.values() if r == role)
            sessions[session] = (role, taken)
        role, index = sessions[session]
        sub = f"{name}.{role}.{index}"
        if sub not in self._scenarios:
            convs = routes[role]
            steps = convs[index] if index < len(convs) else convs[-1]
            self._scenarios[sub] = _Scenario(sub, list(steps), False)
        return sub

    def _dispatch(self, body: dict[str, Any], session: str = "") -> Step:
        messages = body.get("messages")
        name = _find_marker(messages)
        with self._lock:
            if name is not None:
                name = self._routed(name, messages, session)
            found = self._scenarios.get(name) if name is not None else None
            if found is None:
                self._unmatched.append(body)
                return _OK
            found.requests.append(body)
            step = found.choose(_count_assistant(messages))
        return _with_said(_with_cwd(step, body), body)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
