"""The service limits glibc's malloc arenas at start, unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

ASK = "from orchestrator.malloc_arenas import limit_arenas; print(limit_arenas())"


def _limited(**env: str) -> str:
    plain = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    return subprocess.run(
        [sys.executable, "-c", ASK], env={**plain, **env}, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena limit is glibc's")
def test_arenas_are_limited_unless_the_operator_chose() -> None:
    assert _limited() == "True"
    assert _limited(MALLOC_ARENA_MAX="4") == "False"
