"""Steps a cancel must not cut in half: a runtime's start (the Docker runtime's runs in a thread, which a
cancel of its awaiting task does not stop: the container it creates would run unwatched) and the write
that records an agent's end. Each is seen through to its end; the cancel is raised after."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from orchestrator.runtimes.base import RunHandle, RunSpec, Runtime

log = logging.getLogger(__name__)

_T = TypeVar("_T")


async def settled(job: asyncio.Future[_T]) -> _T:
    """The job's result once it has ended, however often the caller is cancelled meanwhile (each cancel
    waits for the job, which goes on; one CancelledError is raised after it ended)."""
    cancelled = False
    while not job.done():
        try:
            await asyncio.wait([job])  # unlike a plain await, a cancel here leaves the job running
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not job.cancelled() and (exc := job.exception()) is not None:
            log.warning("a step seen through after a cancel failed: %s", exc)
        raise asyncio.CancelledError
    return job.result()


async def start_seen_through(runtime: Runtime, spec: RunSpec) -> RunHandle:
    """`runtime.start(spec)`, never abandoned half-way: when the caller is cancelled meanwhile, the start
    runs to its end and what it started is killed and swept before the cancel goes on."""
    job = asyncio.ensure_future(runtime.start(spec))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        log.info("%s: cancelled while it was being started: it is ended once started", spec.agent_id)
        await settled(asyncio.ensure_future(_end_once_started(job)))
        raise


async def _end_once_started(job: asyncio.Future[RunHandle]) -> None:
    await asyncio.wait([job])
    if job.cancelled() or job.exception() is not None:
        return  # nothing runs: a failed start cleans up after itself
    await asyncio.to_thread(_end, job.result())


def _end(handle: RunHandle) -> None:
    handle.kill()
    handle.sweep()  # waits for the killed processes; removes the container
    handle.poll()  # reaps a host run's process
    handle.close()
