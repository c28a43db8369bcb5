"""`orchestrator serve`: the HTTP service in this process, without the command line's libraries (typer,
click, rich), which would stay in its memory for as long as it runs."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from typing import NoReturn

KILL_FLAG = "--kill-agents-on-shutdown"
KEEP_ALIVE_SECONDS = 30


def plain_serve(argv: list[str]) -> bool | None:
    """For `serve` alone or with its one flag (argv after the program's name): whether agents end on
    shutdown. None for any other command line: the CLI parses it (and runs `serve` itself if it is one)."""
    if argv == ["serve"] or argv == ["serve", "--no-kill-agents-on-shutdown"]:
        return False
    if argv == ["serve", KILL_FLAG]:
        return True
    return None


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def serve(*, kill_agents_on_shutdown: bool) -> None:
    """Starts the HTTP service on HOST:PORT (settings from the environment); exits 2 on a wrong set-up."""
    # httpx's package imports its own command-line client, and with it click, rich and pygments, whenever
    # they are installed (they are, for our CLI); the service never runs that client
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    # it runs on asyncio; httpcore imports trio whenever that is installed (selenium, a test dependency,
    # brings it; ours do not), about 13 MB that would never run
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    from orchestrator.malloc_arenas import limit_arenas
    from orchestrator.settings import SettingsError, load_settings

    limit_arenas()  # before any thread starts
    os.umask(0o077)  # what the service creates (data, store, workspaces, runs) is for its user alone
    # each agent's egress proxy may hold hundreds of sockets: the soft limit (often 1024) must not let a
    # few agents starve the service of descriptors for its store and its API
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    import uvicorn

    from orchestrator.api_token import TokenFileError
    from orchestrator.app import create_app
    from orchestrator.http_server import STARTUP_FAILURE, QuietServer
    from orchestrator.store import file_lock

    if settings.sqlite_file is not None:
        try:
            file_lock.hold(settings.sqlite_file)
        except file_lock.DatabaseInUse as exc:
            _fail(str(exc))
    try:
        application = create_app(settings, kill_agents_on_shutdown=kill_agents_on_shutdown)
    except TokenFileError as exc:
        _fail(str(exc))
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        ws="none",  # the API has no WebSocket route: no WebSocket library loads (uvicorn picks one it finds)
        timeout_graceful_shutdown=10,
        # longer than a client's own idle expiry (httpx, which this service's client and CLI use, drops an
        # idle connection after 5 s): at uvicorn's 5 s both ends let go at once, and a request sent on
        # a connection idle that long could meet the service closing it
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = QuietServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: the port was taken, or the app's start-up failed
        sys.exit(STARTUP_FAILURE)
