"""Word of writes to a run directory's files, from the real kernel: what wakes a supervisor, what not."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from orchestrator.agents.output_watch import OutputWatch


async def _settle() -> None:
    """Long enough for the loop to read what the kernel queued."""
    for _ in range(20):
        await asyncio.sleep(0.01)


def test_a_write_in_the_directory_wakes_one_below_it_does_not_and_unwatch_ends_it(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()

    async def scenario() -> dict[str, int]:
        watch = OutputWatch()
        wakes: list[int] = []
        stop = watch.watch(tmp_path, lambda: wakes.append(1))
        assert stop is not None
        seen: dict[str, int] = {}
        fd = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(fd, b"a line\n")
        await _settle()
        seen["written"], wakes[:] = len(wakes), []
        (tmp_path / "home" / "deep").write_text("the agent's home, not its output")
        await _settle()
        seen["below"], wakes[:] = len(wakes), []
        stop()
        os.write(fd, b"after the end\n")
        os.close(fd)
        await _settle()
        seen["after unwatch"] = len(wakes)
        watch.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["written"] >= 1
    assert seen["below"] == 0
    assert seen["after unwatch"] == 0


def test_what_cannot_be_watched_says_so_a_link_included(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")

    async def scenario() -> list[bool]:
        watch = OutputWatch()
        stops = [watch.watch(tmp_path / name, lambda: None) for name in ("gone", "file", "link", "real")]
        watch.close()
        return [stop is None for stop in stops]

    assert asyncio.run(scenario()) == [True, True, True, False]
