"""`settled`: a step a cancel must not cut in half is awaited to its end, however often the caller is
cancelled meanwhile; the cancel is raised after it."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.agents.cancel_safe import settled


def test_a_step_is_seen_through_two_cancels_and_the_cancel_raised_after() -> None:
    async def main() -> None:
        release = asyncio.Event()
        done: list[str] = []

        async def write() -> str:
            await release.wait()
            done.append("written")
            return "row"

        job = asyncio.ensure_future(write())
        waiter = asyncio.ensure_future(settled(job))
        await asyncio.sleep(0)
        for _ in range(2):
            waiter.cancel()
            await asyncio.sleep(0.01)
            assert not waiter.done(), "the caller waits while the step runs"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert done == ["written"] and job.result() == "row"

    asyncio.run(main())


def test_without_a_cancel_the_steps_result_or_error_comes_back() -> None:
    async def main() -> None:
        async def ok() -> int:
            return 7

        async def fails() -> int:
            raise ValueError("no")

        assert await settled(asyncio.ensure_future(ok())) == 7
        with pytest.raises(ValueError, match="no"):
            await settled(asyncio.ensure_future(fails()))

    asyncio.run(main())
