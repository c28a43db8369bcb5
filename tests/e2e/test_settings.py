"""A wrong setting stops the service at start with one line that names the variable."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "not-a-port"),
        ("PORT", "70000"),
        ("AGENT_TIMEOUT_SECONDS", "-5"),
        ("AGENT_TIMEOUT_OVERRIDES", "wizard=5"),
        ("ENABLE_QUEUE_PROCESSOR", "perhaps"),
        ("HOST", "0.0.0.0"),
        ("ALLOWED_HOSTS", "evil.example/path"),
        ("API_MAX_BODY_BYTES", "10"),
    ],
)
def test_wrong_setting_fails_in_one_line_naming_it(tmp_path, variable: str, value: str) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "ORCHESTRATOR_DATA_DIR": str(tmp_path), variable: value}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {variable}:")


@pytest.mark.parametrize("kind", ["symlink", "directory", "empty"])
def test_an_unusable_token_file_stops_the_service_in_one_line(tmp_path, kind: str) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "api-token"
    if kind == "symlink":  # planted to make the service read, or write, somewhere else
        (tmp_path / "elsewhere").write_text("planted-token\n")
        token_file.symlink_to(tmp_path / "elsewhere")
    elif kind == "directory":
        token_file.mkdir()
    else:
        token_file.write_text("")
    env = {"PATH": "/usr/bin:/bin", "ORCHESTRATOR_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {token_file}:"), proc.stderr


def test_a_second_service_on_the_same_sqlite_file_is_refused(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = make_server(data_dir=tmp_path / "shared")
    if first.database_url.startswith("postgresql"):
        pytest.skip("several instances on PostgreSQL are the supported way")
    env = {**first.env, "PORT": str(first.port + 1)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "in use by another orchestrator service" in proc.stderr
    assert first.client.get("/api/health").status_code == 200
    first.stop()
    again = make_server(data_dir=tmp_path / "shared")
    assert again.client.get("/api/health").status_code == 200


def test_a_service_whose_port_is_taken_stops_with_a_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "ORCHESTRATOR_DATA_DIR": str(tmp_path), "PORT": str(port)}
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 3, proc.stderr  # uvicorn's start-up failure, not a clean exit
    assert "address already in use" in proc.stderr.lower(), proc.stderr
