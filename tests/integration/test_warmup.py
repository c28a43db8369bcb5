"""The web stack's first-use work is done at start-up, before the service serves: every router's routes
built, AnyIO's thread backend loaded. Checked in a fresh interpreter, whose modules nothing else loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_STARTED_APP = """
import asyncio, json, sys
from pathlib import Path
from orchestrator.app import create_app
from orchestrator.settings import Settings

app = create_app(Settings(data_dir=Path(sys.argv[1]), claude_bin="/bin/true"))

async def main():
    async with app.router.lifespan_context(app):
        routers = [r for r in app.router.routes if hasattr(r, "_effective_candidates_version")]
        print(json.dumps({
            "routers": len(routers),
            "unbuilt": [type(r).__name__ for r in routers if r._effective_candidates_version is None],
            "anyio_backend": "anyio._backends._asyncio" in sys.modules,
        }))

asyncio.run(main())
"""


def test_a_started_service_has_built_every_router_and_loaded_the_thread_backend(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _STARTED_APP, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["anyio_backend"]
    if found["routers"] == 0:
        pytest.skip("this FastAPI builds a router's routes when it is included")
    assert found["unbuilt"] == []
