"""Handing an agent's paths to its container user and taking them back, on real files (needs root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.runtimes.ownership import AgentUser, hand_over_recorded, take_back

AGENT = AgentUser(1000, 1000)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def _owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_links_planted_in_a_workspace_do_not_carry_the_hand_over_outside(tmp_path: Path) -> None:
    outside = tmp_path / "service-secret"
    outside.write_text("token")
    shared = tmp_path / "project-object"
    shared.write_text("blob")
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("print()")
    (ws / "link-to-secret").symlink_to(outside)
    (ws / "dir-link").symlink_to(tmp_path)
    os.link(shared, ws / "hardlinked-object")
    run = tmp_path / "run"
    run.mkdir()

    hand_over_recorded(run, [ws], [], AGENT)
    assert _owner(ws) == _owner(ws / "src") == _owner(ws / "src" / "main.py") == (1000, 1000)
    assert _owner(outside) == (0, 0), "a link is never followed"
    assert _owner(tmp_path) == (0, 0)
    assert _owner(shared) == (0, 0), "a file shared by a hard link stays the service's"

    (ws / "src" / "new.py").write_text("")
    os.lchown(ws / "src" / "new.py", 1000, 1000)  # what the agent wrote
    take_back(run)
    assert _owner(ws) == _owner(ws / "src" / "main.py") == _owner(ws / "src" / "new.py") == (0, 0)
    assert not (run / "handed_over.json").exists()
    take_back(run)  # nothing recorded: nothing to do


def test_a_root_or_top_level_directory_is_never_handed_over(tmp_path: Path) -> None:
    for path in (Path("/"), Path("/etc"), Path("relative/ws")):
        with pytest.raises(PermissionError, match="refusing"):
            hand_over_recorded(tmp_path, [path], [], AGENT)
    assert _owner(Path("/etc")) == (0, 0)
    assert not (tmp_path / "handed_over.json").exists(), "nothing recorded to take back either"
