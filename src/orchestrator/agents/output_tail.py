"""Turning an agent's output files into stored lines: split, cut, redact, parse."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.clock import utc_now
from orchestrator.domain.redact import Redactor
from orchestrator.domain.stream_json import RunSummary, parse_line
from orchestrator.domain.types import LogStream
from orchestrator.runtimes.base import RunHandle
from orchestrator.store.logs import NewLine, Progress

CHUNK_BYTES = 1 << 16  # one read: ~10k short lines, parsed on the event loop between other work
STREAMS = (LogStream.STDOUT, LogStream.STDERR)


class OutputTail:
    def __init__(
        self,
        agent_id: str,
        handle: RunHandle,
        *,
        offsets: dict[LogStream, int],
        redact: Callable[[str], str],
        max_line_bytes: int,
        summary: RunSummary,
    ) -> None:
        self.agent_id = agent_id
        self._handle = handle
        self.consumed = dict(offsets)
        self._partial = {s: b"" for s in STREAMS}
        self._skipping = dict.fromkeys(STREAMS, False)
        self.moved = False
        self._redact = redact
        self._max = max_line_bytes
        self.summary = summary
        self.last_stderr = ""

    def replay_summary(self, upto: int) -> None:
        """Re-reads stored stdout for the summary only: an adopted agent's run so far."""
        offset = 0
        rest = b""
        while offset < upto:
            chunk = self._handle.read(LogStream.STDOUT, offset, min(CHUNK_BYTES, upto - offset))
            if not chunk:
                break
            offset += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            for raw in lines:
                obj = parse_line(raw.decode("utf-8", "replace"))
                if obj is not None:
                    self.summary.feed(obj)

    def pump(self) -> tuple[list[NewLine], Progress]:
        """Reads what is new in both streams; returns complete lines and the offsets after them.
        `moved` tells whether any byte was read, lines or not (a chunk inside an over-long line)."""
        out: list[NewLine] = []
        self.moved = False
        for stream in STREAMS:
            self.moved |= self._read_stream(stream, out)
        return out, self.progress(len(out))

    def progress(self, lines_added: int) -> Progress:
        return Progress(
            self.agent_id, self.consumed[LogStream.STDOUT], self.consumed[LogStream.STDERR], lines_added
        )

    def _read_stream(self, stream: LogStream, out: list[NewLine]) -> bool:
        start = self.consumed[stream] + len(self._partial[stream])
        chunk = self._handle.read(stream, start, CHUNK_BYTES)
        if not chunk:
            return False
        data = self._partial[stream] + chunk
        pieces = data.split(b"\n")
        tail = pieces.pop()
        if self._skipping[stream] and not pieces:
            self.consumed[stream] += len(tail)
            self._partial[stream] = b""
            return True
        now = utc_now()
        if pieces and not self._skipping[stream] and len(data) <= self._max:
            # No line can be over-long: decode the complete lines at once (a newline byte is never
            # inside a UTF-8 sequence, so this decodes each line exactly as on its own).
            region = len(data) - len(tail)
            self.consumed[stream] += region
            text = data[: region - 1].decode("utf-8", "replace").replace("\x00", "\ufffd")
            self._lines(stream, text.split("\n"), now, out, clean=self._finds_nothing_in(text))
            self._partial[stream] = tail
            return True
        for raw in pieces:
            self.consumed[stream] += len(raw) + 1
            if self._skipping[stream]:
                self._skipping[stream] = False
                continue
            out.append(self._line(stream, raw, now))
        if len(tail) > self._max:
            out.append(self._line(stream, tail, now))
            self.consumed[stream] += len(tail)
            self._skipping[stream] = True
            tail = b""
        self._partial[stream] = tail
        return True

    def _line(self, stream: LogStream, raw: bytes, now: str) -> NewLine:
        parse = True
        if len(raw) > self._max:
            raw = raw[: self._max] + f" …[cut {len(raw) - self._max} bytes]".encode()
            parse = False
        return self._text_line(stream, raw.decode("utf-8", "replace").replace("\x00", "\ufffd"), now, parse)

    def _text_line(self, stream: LogStream, text: str, now: str, parse: bool = True) -> NewLine:
        if stream is LogStream.STDOUT and parse:
            obj = parse_line(text)
            if obj is not None:
                self.summary.feed(obj)
        elif stream is LogStream.STDERR and text.strip():
            self.last_stderr = text
        return NewLine(self.agent_id, now, stream.value, self._redact(text))

    def _finds_nothing_in(self, text: str) -> bool:
        return isinstance(self._redact, Redactor) and self._redact.finds_nothing_in(text)

    def _lines(
        self, stream: LogStream, texts: list[str], now: str, out: list[NewLine], *, clean: bool
    ) -> None:
        """What `_text_line` does, for many lines of one stream at once (`clean`: nothing to redact)."""
        if stream is LogStream.STDOUT:
            for text in texts:
                if text.startswith("{"):
                    obj = parse_line(text)
                    if obj is not None:
                        self.summary.feed(obj)
        else:
            last = next((text for text in reversed(texts) if text.strip()), None)
            if last is not None:
                self.last_stderr = last
        agent_id, name, redact, line = self.agent_id, stream.value, self._redact, NewLine._make
        if clean:
            out.extend([line((agent_id, now, name, text)) for text in texts])
        else:
            out.extend([line((agent_id, now, name, redact(text))) for text in texts])

    def flush_partial(self) -> list[NewLine]:
        """At the very end: a last line without a newline is still a line."""
        out = []
        now = utc_now()
        for stream in STREAMS:
            tail = self._partial[stream]
            if tail and not self._skipping[stream]:
                out.append(self._line(stream, tail, now))
            self.consumed[stream] += len(tail)
            self._partial[stream] = b""
        return out
