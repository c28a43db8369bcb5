from __future__ import annotations

from orchestrator.agents.output_tail import OutputTail
from orchestrator.domain.redact import Redactor
from orchestrator.domain.stream_json import RunSummary
from orchestrator.domain.types import LogStream


class FileHandle:
    """Stands for a run whose output grows as the test appends to it."""

    def __init__(self) -> None:
        self.data = {LogStream.STDOUT: b"", LogStream.STDERR: b""}

    def read(self, stream: LogStream, offset: int, max_bytes: int) -> bytes:
        return self.data[stream][offset : offset + max_bytes]


def _tail(handle: FileHandle, offsets: dict[LogStream, int] | None = None, max_line: int = 100) -> OutputTail:
    return OutputTail(
        "coding-00000001",
        handle,  # type: ignore[arg-type]
        offsets=offsets or {LogStream.STDOUT: 0, LogStream.STDERR: 0},
        redact=lambda s: s.replace("hunter2", "[REDACTED]"),
        max_line_bytes=max_line,
        summary=RunSummary(),
    )


def test_partial_lines_wait_for_their_newline() -> None:
    handle = FileHandle()
    tail = _tail(handle)
    handle.data[LogStream.STDOUT] = b"one\ntw"
    lines, progress = tail.pump()
    assert [ln.content for ln in lines] == ["one"] and progress.stdout_offset == 4
    handle.data[LogStream.STDOUT] += b"o\nthree"
    lines, progress = tail.pump()
    assert [ln.content for ln in lines] == ["two"] and progress.stdout_offset == 8
    assert [ln.content for ln in tail.flush_partial()] == ["three"]


def test_resume_from_offset_reads_no_line_twice() -> None:
    handle = FileHandle()
    handle.data[LogStream.STDOUT] = b"a\nb\nc\n"
    handle.data[LogStream.STDERR] = b"e1\ne2\n"
    tail = _tail(handle, {LogStream.STDOUT: 2, LogStream.STDERR: 3})
    lines, _ = tail.pump()
    assert [(ln.stream, ln.content) for ln in lines] == [("stdout", "b"), ("stdout", "c"), ("stderr", "e2")]


def test_long_lines_are_cut_with_a_marker_and_the_rest_skipped() -> None:
    handle = FileHandle()
    tail = _tail(handle, max_line=10)
    handle.data[LogStream.STDOUT] = b"x" * 25
    lines, _ = tail.pump()
    assert len(lines) == 1 and lines[0].content.startswith("x" * 10) and "cut 15 bytes" in lines[0].content
    handle.data[LogStream.STDOUT] += b"y" * 30
    assert tail.pump()[0] == []
    handle.data[LogStream.STDOUT] += b"zz\nnext\n"
    lines, progress = tail.pump()
    assert [ln.content for ln in lines] == ["next"]
    assert progress.stdout_offset == len(handle.data[LogStream.STDOUT])


def test_lines_are_redacted_decoded_and_fed_to_the_summary() -> None:
    handle = FileHandle()
    tail = _tail(handle, max_line=10_000)
    handle.data[LogStream.STDOUT] = (
        b'{"type":"result","is_error":false,"result":"pw hunter2"}\n\xff\x00bad bytes\n'
    )
    lines, _ = tail.pump()
    assert "hunter2" not in lines[0].content
    assert tail.summary.result_seen and tail.summary.result_text == "pw hunter2"
    assert "\x00" not in lines[1].content and "bad bytes" in lines[1].content


def test_a_read_decoded_and_redacted_at_once_gives_the_lines_read_one_by_one() -> None:
    secret = "s3cr3t-value"
    raw = b"".join(
        [b"plain line %d\n" % i for i in range(300)]
        + [b"bad \xff\xfe utf8 \x00 nul\n", b"token " + secret.encode() + b" end\n"]
        + [b"AUTHORIZATION: Bearer abcdef\n", b"caf\xc3\xa9 ghp_abcdefghijklmnopqrstuvwxyz0123\n", b"last\n"]
    )

    def contents(max_line: int, raw: bytes = raw) -> list[str]:
        handle = FileHandle()
        handle.data[LogStream.STDOUT] = raw
        tail = OutputTail(
            "coding-00000001",
            handle,  # type: ignore[arg-type]
            offsets={LogStream.STDOUT: 0, LogStream.STDERR: 0},
            redact=Redactor([secret]),
            max_line_bytes=max_line,
            summary=RunSummary(),
        )
        lines, progress = tail.pump()
        assert progress.stdout_offset == len(raw)
        return [ln.content for ln in lines]

    at_once, one_by_one = contents(1 << 20), contents(200)  # below the read's size: line by line
    assert at_once == one_by_one
    assert len(at_once) == 305 and at_once[0] == "plain line 0" and at_once[-1] == "last"
    assert not any(secret in c or "abcdef" in c for c in at_once)
    assert at_once[300] == "bad \ufffd\ufffd utf8 \ufffd nul" and at_once[303].startswith("café ")
    only_the_value = b"".join(
        [b"plain line %d\n" % i for i in range(300)] + [b"it is " + secret.encode() + b"\n"]
    )
    assert contents(1 << 20, only_the_value)[-1] == "it is [REDACTED]"
