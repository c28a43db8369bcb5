"""One task on `a/calc` and `b/calc` (one name, two owners) through the real server and a real `claude`
agent: each repository gets its own source (the forge's mirror for one, the operator's project for the
other, never a flat clone that is a third owner's), its own checkout, and the agent sees both apart."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_forge_repos import STARTER, _wait_ended
from tests.support import fake_anthropic as fm
from tests.support.git_http import GitHttpServer
from tests.support.repos import git, remote_with_project


def _with_owner_file(bare: Path, seed: Path, owner: str) -> None:
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "OWNER.txt").write_text(f"{owner}\n")
    git("add", "OWNER.txt", cwd=seed)
    git("commit", "--quiet", "-m", owner, cwd=seed)
    git("push", "--quiet", "origin", "main", cwd=seed)


def test_a_task_on_a_calc_and_b_calc_keeps_them_apart(
    make_server,
    workflow_env: dict[str, str],
    fake_model: fm.FakeAnthropic,
    git_host: GitHttpServer,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    bare_a, _ = remote_with_project(tmp_path / "up-a", "calc")
    _with_owner_file(git_host.add_repo("a", "calc", source=bare_a), tmp_path / "seed-a", "a-on-the-forge")
    projects = tmp_path / "projects-both"
    bare_b, _ = remote_with_project(tmp_path / "up-b", "calc")
    _with_owner_file(bare_b, tmp_path / "seed-b", "b-the-operators-project")
    git("clone", "--quiet", str(bare_b), str(projects / "b" / "calc"))
    # a flat clone of a third owner's calc: never taken for a/calc or b/calc (its origin is not fetched)
    git("clone", "--quiet", str(bare_b), str(projects / "calc"))
    git("remote", "set-url", "origin", "https://example.invalid/c/calc.git", cwd=projects / "calc")

    server = make_server(**{**workflow_env, "PROJECTS_DIR": str(projects)}, WORKSPACE_CLEANUP="never")
    look = "cat OWNER.txt ../b@calc/OWNER.txt && pwd"
    marker = fake_model.roles(
        {STARTER: [[fm.tool("Bash", {"command": look, "description": "read"}), fm.text("no plan")]]}
    )
    created = server.client.post(
        "/api/tasks", json={"title": "Both", "description": f"Read. {marker}", "repos": ["a/calc", "b/calc"]}
    )
    assert created.status_code == 201, created.text
    task_id = str(created.json()["id"])
    assert server.client.post(f"/api/queue/add/{task_id}").status_code == 201
    task = _wait_ended(server, task_id)
    assert "without a valid outcome" in str(task["error"]), task["error"]  # the starter gave no plan

    root = server.data_dir / "workspaces" / "tasks" / task_id
    assert sorted(p.name for p in root.iterdir()) == ["a@calc", "b@calc"]
    assert (root / "a@calc" / "OWNER.txt").read_text() == "a-on-the-forge\n"
    assert (root / "b@calc" / "OWNER.txt").read_text() == "b-the-operators-project\n"
    seen = str(fake_model.requests_for(f"{marker[len('[[scenario:') : -2]}.{STARTER}.0"))
    assert "a-on-the-forge\\nb-the-operators-project" in seen, seen[-2000:]
    assert (server.data_dir / "mirrors" / "a" / "calc.git" / "HEAD").is_file()
    assert not (server.data_dir / "mirrors" / "b" / "calc.git").exists(), "b/calc came from its project"
