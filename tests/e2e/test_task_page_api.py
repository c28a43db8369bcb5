"""The task page's read routes through the real server: a task's branch diff from the service's mirror
(real git repositories: a project under PROJECTS_DIR, the mirror the workflow fills) and its timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.support.repos import git, remote_with_project
from tests.support.server import Server, write_db

OWNER = "acme"
HOSTILE_LINES = ['<img src=x onerror="window.__pwned=1">', "</script><script>window.__pwned=2</script>"]


@pytest.fixture
def project_server(make_server: ServerFactory, tmp_path: Path) -> Server:
    remote_with_project(tmp_path, "calc")
    return make_server(PROJECTS_DIR=str(tmp_path / "projects"), GITHUB_OWNER=OWNER)


def mirror_of(server: Server) -> Path:
    """The service's mirror of acme/calc, as the workflow makes it (a bare repository)."""
    mirror = server.data_dir / "mirrors" / OWNER / "calc.git"
    if not (mirror / "HEAD").is_file():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", str(mirror))
    return mirror


def branch_with(tmp_path: Path, server: Server, branch: str, files: dict[str, bytes]) -> Path:
    """A checkout of the project with `files` committed on `branch`, taken into the mirror."""
    work = tmp_path / f"work-{branch.replace('/', '-')}"
    git("clone", "--quiet", str(tmp_path / "projects" / "calc"), str(work))
    git("checkout", "--quiet", "-b", branch, cwd=work)
    for name, data in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", f"change on {branch}", cwd=work)
    git("push", "--quiet", str(mirror_of(server)), f"{branch}:refs/heads/{branch}", cwd=work)
    return work


def task_on(server: Server, branch: str, repo: str = "calc") -> str:
    task_id = str(server.client.post("/api/tasks", json={"title": "t", "repo": repo}).json()["id"])
    write_db(server, f"UPDATE tasks SET branch = '{branch}' WHERE id = '{task_id}'")
    return task_id


def test_the_diff_of_a_two_file_change_against_the_project_head(
    project_server: Server, tmp_path: Path
) -> None:
    server = project_server
    branch_with(
        tmp_path,
        server,
        "task/add-calc",
        {"calc.py": b"def add(a, b):\n    return a + b\n", "README.md": b"# calc\nAdds numbers.\n"},
    )
    project = tmp_path / "projects" / "calc"  # the project moves on: its new commit is not the branch's
    (project / "LATER.md").write_text("later\n")
    git("add", "LATER.md", cwd=project)
    git("commit", "--quiet", "-m", "later", cwd=project)
    task_id = task_on(server, "task/add-calc")

    answer = server.client.get(f"/api/tasks/{task_id}/diff")
    assert answer.status_code == 200, answer.text
    diff = answer.json()
    assert diff["base"] == git("rev-parse", "HEAD", cwd=project)
    assert (diff["page"], diff["pages"], diff["files_total"], diff["truncated"]) == (1, 1, 2, False)
    by_path = {f["path"]: f for f in diff["files"]}
    assert sorted(by_path) == ["README.md", "calc.py"], (
        "what the branch changed, not the project's later commit"
    )
    assert (by_path["calc.py"]["additions"], by_path["calc.py"]["deletions"]) == (2, 0)
    assert "+def add(a, b):" in by_path["calc.py"]["patch"]
    assert by_path["calc.py"]["patch"].startswith("diff --git a/calc.py b/calc.py")
    assert (
        "-# calc" not in by_path["README.md"]["patch"] and "+Adds numbers." in by_path["README.md"]["patch"]
    )
    assert "\x1b[" not in answer.text, "no colour codes"


def test_binary_files_are_listed_not_shown_and_hostile_text_is_data(
    project_server: Server, tmp_path: Path
) -> None:
    server = project_server
    blob = bytes(range(256)) * 8
    hostile = ("\n".join(HOSTILE_LINES) + "\n").encode()
    branch_with(tmp_path, server, "task/bin", {"logo.png": blob, "page.html": hostile})
    diff = server.client.get(f"/api/tasks/{task_on(server, 'task/bin')}/diff").json()
    by_path = {f["path"]: f for f in diff["files"]}
    assert by_path["logo.png"]["binary"] is True and by_path["logo.png"]["additions"] is None
    assert (
        "Binary files" in by_path["logo.png"]["patch"]
        and "GIT binary patch" not in by_path["logo.png"]["patch"]
    )
    assert all(f"+{line}" in by_path["page.html"]["patch"] for line in HOSTILE_LINES)


def test_a_large_diff_is_paged(project_server: Server, tmp_path: Path) -> None:
    server = project_server
    files = {f"src/m{i:03}.py": f"x = {i}\n".encode() for i in range(50)}
    files["big.txt"] = b"".join(f"line {i}\n".encode() for i in range(2500))
    branch_with(tmp_path, server, "task/many", files)
    task_id = task_on(server, "task/many")
    first = server.client.get(f"/api/tasks/{task_id}/diff").json()
    assert first["files_total"] == 51 and first["pages"] >= 2
    seen = [f["path"] for f in first["files"]]
    for page in range(2, first["pages"] + 1):
        answer = server.client.get(f"/api/tasks/{task_id}/diff", params={"page": page}).json()
        assert answer["page"] == page
        seen += [f["path"] for f in answer["files"]]
    assert sorted(seen) == sorted(files), "every file on exactly one page"
    assert len(seen) == len(set(seen))
    big = next(
        f
        for p in range(1, first["pages"] + 1)
        for f in server.client.get(f"/api/tasks/{task_id}/diff", params={"page": p}).json()["files"]
        if f["path"] == "big.txt"
    )
    assert big["additions"] == 2500 and big["patch"].count("\n+line ") == 2500
    past = server.client.get(f"/api/tasks/{task_id}/diff", params={"page": first["pages"] + 1})
    assert past.status_code == 422 and "page" in past.text


def test_no_branch_no_task_and_hostile_names_are_404(project_server: Server, tmp_path: Path) -> None:
    server = project_server
    assert server.client.get("/api/tasks/task-nope/diff").status_code == 404
    fresh = server.client.post("/api/tasks", json={"title": "no branch yet", "repo": "calc"}).json()["id"]
    assert server.client.get(f"/api/tasks/{fresh}/diff").status_code == 404
    assert server.client.get(f"/api/tasks/{task_on(server, 'task/not-pushed')}/diff").status_code == 404

    # A repository outside the mirror, with a branch of the same kind: no name reaches it.
    outside = tmp_path / "outside.git"
    git("init", "--quiet", "--bare", str(outside))
    secret_work = branch_with(tmp_path, server, "task/secret", {"secret.txt": b"TOP-SECRET-CONTENT\n"})
    git("push", "--quiet", str(outside), "task/secret:refs/heads/secret", cwd=secret_work)
    git("update-ref", "-d", "refs/heads/task/secret", cwd=mirror_of(server))
    for branch in (
        f"../../../../../..{outside}/refs/heads/secret",
        "task/../../../outside",
        "--output=/tmp/pwned-by-branch",
        "HEAD",
        "secret@{0}",
        f"{outside}",
    ):
        answer = server.client.get(f"/api/tasks/{task_on(server, branch)}/diff")
        assert answer.status_code == 404, (branch, answer.text)
        assert "TOP-SECRET" not in answer.text
    for repo in ("../outside", "acme/../../outside"):
        task_id = server.client.post("/api/tasks", json={"title": "t"}).json()["id"]
        write_db(server, f"UPDATE tasks SET repo = '{repo}', branch = 'secret' WHERE id = '{task_id}'")
        answer = server.client.get(f"/api/tasks/{task_id}/diff")
        assert answer.status_code == 404 and "TOP-SECRET" not in answer.text, answer.text
    assert not Path("/tmp/pwned-by-branch").exists()


def test_the_timeline_of_a_task_with_agents(server: Server) -> None:
    task_id = server.client.post("/api/tasks", json={"title": "timeline"}).json()["id"]
    write_db(
        server,
        "INSERT INTO agents (id, task_id, agent_type, status, runtime, created_at, updated_at, prompt,"
        " started_at, completed_at, timeout_seconds, max_turns, cost_usd, input_tokens, output_tokens,"
        " log_lines, metadata, flags, end_reason) VALUES"
        f" ('agent-p1', '{task_id}', 'starter', 'completed', 'local', '2026-01-01T10:00:00.000Z',"
        " '2026-01-01T10:01:00.000Z', 'p', '2026-01-01T10:00:01.000Z', '2026-01-01T10:01:00.000Z', 60, 10,"
        " 0.25, 100, 10, 0, '{}', NULL, 'completed'),"
        f" ('agent-c1', '{task_id}', 'coding', 'failed', 'local', '2026-01-01T10:01:01.000Z',"
        " '2026-01-01T10:05:00.000Z', 'p', '2026-01-01T10:01:02.000Z', '2026-01-01T10:05:00.000Z', 60, 10,"
        " 1.5, 2000, 300, 0, '{}',"
        ' \'[{"name": "stalled", "detail": "no output for 300 s", "at": "2026-01-01T10:04:00.000Z"}]\','
        " 'budget_exceeded'),"
        f" ('agent-c2', '{task_id}', 'coding', 'completed', 'local', '2026-01-01T10:06:00.000Z',"
        " '2026-01-01T10:09:00.000Z', 'p', '2026-01-01T10:06:01.000Z', '2026-01-01T10:09:00.000Z', 60, 10,"
        " NULL, NULL, NULL, 0, '{}', NULL, 'completed')",
        "INSERT INTO events (id, type, task_id, agent_id, payload, status, created_at, attempts) VALUES"
        f" ('ev-checks', 'pr.checks.passed', '{task_id}', NULL, '{{\"waited_for\": \"checks\"}}',"
        " 'processed', '2026-01-01T10:05:40.000Z', 1)",
    )
    answer = server.client.get(f"/api/tasks/{task_id}/timeline")
    assert answer.status_code == 200, answer.text
    line = answer.json()
    assert [(a["id"], a["agent_type"], a["round"]) for a in line["agents"]] == [
        ("agent-p1", "starter", 1),
        ("agent-c1", "coding", 1),
        ("agent-c2", "coding", 2),
    ]
    assert line["agents"][1]["flags"] == ["stalled", "budget_exceeded"]
    assert line["agents"][2]["end"] == "2026-01-01T10:09:00.000Z" and line["agents"][2]["flags"] == []
    assert line["waits"] == [
        {
            "kind": "checks",
            "start": "2026-01-01T10:05:00.000Z",
            "end": "2026-01-01T10:05:40.000Z",
            "outcome": "pr.checks.passed",
        }
    ]
    assert (line["cost_usd"], line["input_tokens"], line["output_tokens"]) == (1.75, 2100, 310)
    assert server.client.get("/api/tasks/task-nope/timeline").status_code == 404


def test_a_forge_repository_is_compared_with_the_upstream_default_branch(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Not under PROJECTS_DIR: the base is the upstream's default branch as the mirror last fetched it."""
    server = make_server(PROJECTS_DIR=str(tmp_path / "projects"), GITHUB_OWNER=OWNER)
    work = tmp_path / "lib"
    git("init", "--quiet", "--initial-branch=trunk", str(work))
    (work / "lib.py").write_text("a = 1\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "upstream", cwd=work)
    git("checkout", "--quiet", "-b", "task/lib", cwd=work)
    (work / "lib.py").write_text("a = 2\n")
    git("commit", "--quiet", "-am", "the task's change", cwd=work)
    git("checkout", "--quiet", "trunk", cwd=work)
    (work / "later.py").write_text("later = 1\n")  # the upstream moved on after the branch left it
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "upstream later", cwd=work)
    mirror = server.data_dir / "mirrors" / OWNER / "lib.git"
    mirror.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", str(mirror))
    git(
        "push",
        "--quiet",
        str(mirror),
        "trunk:refs/remotes/origin/trunk",
        "task/lib:refs/heads/task/lib",
        cwd=work,
    )
    git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk", cwd=mirror)
    task_id = task_on(server, "task/lib", repo="lib")

    diff = server.client.get(f"/api/tasks/{task_id}/diff").json()
    assert diff["base"] == git("rev-parse", "trunk", cwd=work)
    assert [(f["path"], f["additions"], f["deletions"]) for f in diff["files"]] == [("lib.py", 1, 1)]
    assert "-a = 1\n+a = 2" in diff["files"][0]["patch"]
    git("symbolic-ref", "--delete", "refs/remotes/origin/HEAD", cwd=mirror)
    assert server.client.get(f"/api/tasks/{task_id}/diff").status_code == 404, "no base known: no diff"
