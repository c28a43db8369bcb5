"""Loaded by every Python process whose PYTHONPATH holds this folder (`python -m bench.probe` puts a copy
on the service's). `probe.json` beside it names functions and a file: once the process has imported
`orchestrator.app` (the service; any other process is left alone), each function is wrapped in a
wall-clock timer where its module or class holds it, and the samples are written to the file every
second and once the service has shut down. With `"cpu": true`, a function that is not a coroutine is
timed by its thread's CPU clock instead, and the event loop's CPU is summed by what it ran (each task by
its coroutine's name, each other callback by its function's). Without `probe.json` nothing is loaded."""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

_CONFIG = Path(__file__).with_name("probe.json")
_samples: dict[str, list[float]] = {}
_clock = time.perf_counter


def _timed(name: str, fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                _samples.setdefault(name, []).append(time.perf_counter() - start)

        return timed_async

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            _samples.setdefault(name, []).append(_clock() - start)

    return timed


def _wrap(part: str) -> None:
    """`module:Class.function` or `module:function`, replaced where callers look it up."""
    module, _, dotted = part.partition(":")
    *owners, attr = dotted.split(".")
    owner: Any = importlib.import_module(module)
    for name in owners:
        owner = getattr(owner, name)
    found = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
    if isinstance(found, staticmethod):
        setattr(owner, attr, staticmethod(_timed(part, found.__func__)))
    else:
        setattr(owner, attr, _timed(part, found))


def _dump(out: Path) -> None:
    figures = {}
    for name, values in list(_samples.items()):
        ordered = sorted(values)
        figures[name] = {
            "n": len(ordered),
            "p50_ms": ordered[len(ordered) // 2] * 1000,
            "mean_ms": sum(ordered) / len(ordered) * 1000,
            "total_ms": sum(ordered) * 1000,
        }
    out.write_text(json.dumps(figures, indent=1))


def _dump_after_shutdown(out: Path) -> None:
    """The last samples written once uvicorn has shut the app down: it then raises the stop signal again,
    and the process ends without running atexit."""
    from uvicorn.server import Server

    shutdown = Server.shutdown

    async def shutdown_then_dump(self: Server, *args: Any, **kwargs: Any) -> None:
        try:
            await shutdown(self, *args, **kwargs)
        finally:
            _dump(out)

    Server.shutdown = shutdown_then_dump  # type: ignore[method-assign]


def _loop_callback_name(handle: Any) -> str:
    import asyncio

    callback = handle._callback
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return "loop task " + getattr(owner.get_coro(), "__qualname__", "?")
    return "loop callback " + getattr(callback, "__qualname__", type(callback).__name__)


def _time_the_loop() -> None:
    """Each callback the event loop runs, timed by the CPU clock and filed under what it ran."""
    import asyncio.events

    run = asyncio.events.Handle._run

    def timed_run(handle: Any) -> None:
        start = time.thread_time()
        try:
            run(handle)
        finally:
            _samples.setdefault(_loop_callback_name(handle), []).append(time.thread_time() - start)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]


def _when_the_service_is_up(parts: list[str], out: Path) -> None:
    for _ in range(12_000):
        if "orchestrator.app" in sys.modules:
            break
        time.sleep(0.005)
    else:
        return  # not the service (the bench itself, a migration process, git's helpers)
    for part in parts:
        try:
            _wrap(part)
        except (ImportError, AttributeError, KeyError) as exc:
            print(f"bench.probe: cannot time {part}: {exc!r}", file=sys.stderr)
    _dump_after_shutdown(out)
    while True:
        time.sleep(1)
        _dump(out)


if _CONFIG.exists():
    _config = json.loads(_CONFIG.read_text())
    if _config.get("cpu"):
        _clock = time.thread_time
        _time_the_loop()  # before the service's loop starts; a process that is not the service never dumps
    threading.Thread(
        target=_when_the_service_is_up,
        args=(_config["parts"], Path(_config["out"])),
        name="bench-probe",
        daemon=True,
    ).start()
