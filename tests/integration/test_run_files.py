"""The service's reads of a run directory's output files, against what an agent that can write there
might leave: links to the service's files, FIFOs that would block the reader, oversized exit codes."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.domain.types import LogStream
from orchestrator.runtimes import files


def test_output_files_are_read_as_written(tmp_path: Path) -> None:
    files.create(tmp_path)
    (tmp_path / "stdout").write_bytes(b"line one\nline two\n")
    (tmp_path / "exit_code").write_text("3\n")
    out = files.OutputFiles(tmp_path)
    assert out.read(LogStream.STDOUT, 5, 100) == b"one\nline two\n"
    assert out.exit_code() == 3
    out.close()


def test_links_and_fifos_in_place_of_output_files_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "service-secret"
    secret.write_text("GITHUB_TOKEN=ghp_secret\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "stdout").symlink_to(secret)
    os.mkfifo(run / "stderr")  # opening it for reading would wait for a writer forever
    (run / "exit_code").symlink_to(tmp_path / "code")
    (tmp_path / "code").write_text("0\n")
    out = files.OutputFiles(run)
    assert out.read(LogStream.STDOUT, 0, 1 << 20) == b""
    assert out.read(LogStream.STDERR, 0, 1 << 20) == b""
    assert out.exit_code() is None, "a link is not a recorded exit code"
    out.close()


def test_an_exit_code_file_is_read_with_a_cap(tmp_path: Path) -> None:
    (tmp_path / "exit_code").write_text("1" * 10_000_000)
    assert files.recorded_exit_code(tmp_path) is None
    (tmp_path / "exit_code").write_text("")
    assert files.recorded_exit_code(tmp_path) is None, "empty: not ended yet (Docker pre-creates it)"
