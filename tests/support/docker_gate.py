"""The real Docker engine behind a Unix socket of the test's own, relayed byte for byte, where one chosen
request waits at a gate until the test opens it: the slow part of a container's start, made as long as
a test needs (a kill or a stop lands while the service's start thread waits on the engine).

The service reaches it through DOCKER_HOST=`url`."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType

ENGINE = "/var/run/docker.sock"
_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ")


class DockerGate:
    def __init__(self, hold: re.Pattern[bytes], engine: str = ENGINE) -> None:
        """`hold`: the first request line it matches waits until `open()`; every other one passes."""
        self._hold = hold
        self._engine = engine
        self._dir = Path(tempfile.mkdtemp(prefix="dgate-", dir="/tmp"))  # a socket path is short
        self.path = self._dir / "docker.sock"
        self.holding = threading.Event()  # the held request has arrived (and waits)
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self._held_once = False
        self._held_at = 1 << 30  # its index in `lines`, once relayed
        self.lines: list[bytes] = []  # every request line relayed, in order
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def open(self) -> None:
        self._opened.set()

    def relayed_after_held(self, pattern: re.Pattern[bytes]) -> bool:
        """Whether a request line `pattern` matches has been relayed since the held one."""
        with self._lock:
            return any(pattern.search(line) for line in self.lines[self._held_at :])

    def close(self) -> None:
        self._closed = True
        self._opened.set()
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> DockerGate:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            engine.connect(self._engine)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pump, args=(engine, client), daemon=True).start()
        try:
            while chunk := client.recv(1 << 16):
                if chunk.startswith(_METHODS):
                    self._request(chunk.split(b"\r\n", 1)[0])
                engine.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(engine)

    def _request(self, line: bytes) -> None:
        with self._lock:
            hold = not self._held_once and self._hold.search(line) is not None
            self._held_once = self._held_once or hold
        if hold:
            self.holding.set()
            self._opened.wait()
        with self._lock:
            if hold:
                self._held_at = len(self.lines)
            self.lines.append(line)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _shut(sink)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
