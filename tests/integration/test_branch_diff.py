"""forge/branch_diff.py against real git: output bounded, odd file names read back exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.forge import branch_diff
from orchestrator.forge.errors import GitError
from orchestrator.forge.git import git_env
from tests.support.repos import git


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A bare repository with `base` and a branch on it that changes files with odd names."""
    work = tmp_path / "work"
    git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "README.md").write_text("# r\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "base", cwd=work)
    base = git("rev-parse", "HEAD", cwd=work)
    for name in ("--output=x", ":(glob)*", "tab\there", "é.txt", "big.txt"):
        (work / name).write_text("line\n" * (5000 if name == "big.txt" else 1))
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "odd names", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "bare.git"
    git("clone", "--quiet", "--bare", str(work), str(bare))
    return bare, base, head


def test_odd_names_are_listed_and_each_gets_its_own_patch(repo: tuple[Path, str, str]) -> None:
    bare, base, head = repo
    env = {**git_env(), "GIT_DIR": str(bare)}
    stats, complete = branch_diff.file_stats(bare, base, head, env)
    assert complete
    names = sorted(s.path for s in stats)
    assert names == sorted(["--output=x", ":(glob)*", "tab\there", "é.txt", "big.txt"])
    small = [n for n in names if n != "big.txt"]
    pieces, whole = branch_diff.patches(bare, base, head, small, env)
    assert whole and len(pieces) == len(small), "each literal path matched itself only"
    assert not (Path.cwd() / "x").exists()


def test_output_past_the_cap_is_cut_and_said_to_be(repo: tuple[Path, str, str]) -> None:
    bare, base, head = repo
    env = {**git_env(), "GIT_DIR": str(bare)}
    out = branch_diff.bounded_git(
        bare, ["diff", f"{base}...{head}", "--", "big.txt"], env, cap=1000, timeout=20
    )
    assert not out.complete and len(out.data) == 1000
    out = branch_diff.bounded_git(
        bare, ["diff", f"{base}...{head}", "--", "README.md"], env, cap=1000, timeout=20
    )
    assert out.complete and out.data == b""
    with pytest.raises(GitError):
        branch_diff.bounded_git(bare, ["diff", f"{'0' * 40}...{head}"], env, cap=1000, timeout=20)
