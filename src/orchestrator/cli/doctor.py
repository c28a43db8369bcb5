"""`orchestrator doctor`: is this machine set up to run the service? Each check says ok or what to fix."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from orchestrator.client import Client, ConnectionFailed, OrchestratorError, RetryPolicy
from orchestrator.settings import CLAUDE_CODE_VERSION, Settings, SettingsError, load_settings

State = Literal["ok", "warn", "fail"]


@dataclass
class Check:
    """One finding. `fail` is an essential problem (the service cannot work); `warn` one it can live with."""

    name: str
    state: State
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def check_settings() -> tuple[Check, Settings | None]:
    try:
        settings = load_settings()
    except SettingsError as exc:
        return Check("settings", "fail", str(exc), "correct that environment variable"), None
    return Check("settings", "ok", f"data in {settings.data_dir}"), settings


def _claude_path(settings: Settings) -> str | None:
    path = settings.claude_bin
    if os.sep in path:
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(path)


def check_claude(settings: Settings) -> Check:
    path = _claude_path(settings)
    fix = "run `orchestrator install-claude`, or set CLAUDE_BIN to the `claude` executable"
    if path is None:
        return Check("claude", "fail", f"no claude CLI at {settings.claude_bin!r}", fix)
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("claude", "fail", f"{path} --version did not run: {exc}", fix)
    said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    version = said[0] if said else ""
    if proc.returncode != 0:
        return Check("claude", "fail", f"{path} --version exited {proc.returncode}: {version}", fix)
    if CLAUDE_CODE_VERSION not in version:
        return Check(
            "claude",
            "warn",
            f"{version} at {path}; the service is tested with {CLAUDE_CODE_VERSION}",
            "run `orchestrator install-claude` for the pinned release",
        )
    return Check("claude", "ok", f"{version} at {path}")


def check_database(settings: Settings) -> Check:
    """Opens the database and reads its schema revision; never creates, migrates or writes."""
    from orchestrator.store.db import Database

    url = settings.resolved_database_url
    sqlite = url.startswith("sqlite")
    where = str(settings.database_file) if sqlite else url.split("@")[-1]
    fix = "make the data directory writable (ORCHESTRATOR_DATA_DIR / DATABASE_PATH) or fix DATABASE_URL"
    if sqlite and not settings.database_file.exists():
        parent = _nearest_existing(settings.database_file.parent)
        if not os.access(parent, os.W_OK | os.X_OK):
            return Check("database", "fail", f"{where}: cannot be created, {parent} is not writable", fix)
        return Check("database", "ok", f"{where}: not created yet; `orchestrator serve` creates it")
    try:
        db = Database(url)
        try:
            current = db.schema_revision()
        finally:
            db.dispose()
    except Exception as exc:
        return Check("database", "fail", f"{where}: {exc}", fix)
    head = Database.head_revision()
    if current == head:
        return Check("database", "ok", f"{where}: opens, schema at {head}")
    if current is None:
        return Check("database", "ok", f"{where}: opens, empty; the service migrates it at its start")
    return Check(
        "database",
        "warn",
        f"{where}: schema at {current}, this version's is {head}; the service migrates it at its start",
    )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_runtime(settings: Settings) -> Check:
    if settings.agent_runtime == "host":
        if os.access("/bin/sh", os.X_OK):
            return Check("runtime", "ok", "host processes, /bin/sh present")
        fix = "install a POSIX shell"
        return Check("runtime", "fail", "host processes need /bin/sh, and there is none", fix)
    from orchestrator.runtimes.factory import make_runtime

    try:
        problem = make_runtime(settings, "doctor").check()
    except Exception as exc:
        problem = str(exc)
    if problem is None:
        return Check("runtime", "ok", f"{settings.agent_runtime}: reachable, agents can start")
    fix = "start the engine or fix DOCKER_HOST / AGENT_IMAGE, or the cluster settings (KUBERNETES_*)"
    return Check("runtime", "fail", f"{settings.agent_runtime}: {problem}", fix)


def check_sandbox(settings: Settings) -> Check:
    from orchestrator.runtimes.factory import UNSANDBOXED
    from orchestrator.runtimes.sandbox import Bwrap

    if settings.agent_runtime != "host":
        return Check("sandbox", "ok", f"agents in {settings.agent_runtime}, not on this host")
    fix = "install bubblewrap (Debian: apt-get install bubblewrap) and set AGENT_SANDBOX=auto or bwrap"
    if settings.agent_sandbox == "none":
        return Check("sandbox", "warn", f"AGENT_SANDBOX=none: {UNSANDBOXED}", fix)
    problem = Bwrap(settings.bwrap_bin).problem
    if problem is None:
        return Check("sandbox", "ok", f"agents run in bubblewrap ({settings.bwrap_bin})")
    if settings.agent_sandbox == "bwrap":
        return Check("sandbox", "fail", f"AGENT_SANDBOX=bwrap but {problem}: agents will not start", fix)
    return Check(
        "sandbox", "warn", f"AGENT_SANDBOX=auto found no working sandbox ({problem}): {UNSANDBOXED}", fix
    )


def check_github(settings: Settings) -> Check:
    from orchestrator.forge.errors import ForgeError
    from orchestrator.forge.github import GitHubClient

    if not settings.github_token:
        return Check(
            "github",
            "warn",
            "not configured: agents cannot open pull requests",
            "set GITHUB_TOKEN (and GITHUB_OWNER) in the service's environment",
        )
    fix = "set a valid GITHUB_TOKEN (and GITHUB_API_URL for GitHub Enterprise)"
    try:
        with GitHubClient(settings.github_api_url, settings.github_token, settings.github_owner) as github:
            status = github.status()
    except ForgeError as exc:
        return Check("github", "warn", f"{settings.github_api_url} did not answer: {exc.message}", fix)
    if not status.valid:
        return Check("github", "fail", f"GitHub refused the token: {status.error}", fix)
    return Check("github", "ok", f"token of {status.login} for {settings.github_owner}")


def check_server(url: str | None, token: str | None) -> Check:
    try:
        with Client(url, token=token, timeout=3, retries=RetryPolicy(attempts=0)) as client:
            health = client.health()
            where = client.base_url
    except ConnectionFailed as exc:
        return Check("server", "warn", f"not answering: {exc.detail}", "start it with `orchestrator serve`")
    except (OrchestratorError, ValueError) as exc:
        return Check("server", "warn", f"{url}: {exc}", "check --url / ORCHESTRATOR_URL")
    if health.version is None:  # the details are for callers with the token
        detail = f"{where} answers, {health.status} (give its API token for the details)"
        return Check("server", "ok" if health.status == "ok" else "warn", detail)
    if health.status != "ok":
        problems = f"database {health.database}; runtime {health.runtime}; claude {health.claude}"
        return Check("server", "warn", f"{where} answers but is {health.status}: {problems}")
    return Check(
        "server", "ok", f"{where} answers: version {health.version}, {health.running_agents} running"
    )


def run_checks(url: str | None, token: str | None) -> list[Check]:
    first, settings = check_settings()
    checks = [first]
    needs: list[tuple[str, Callable[[Settings], Check]]] = [
        ("claude", check_claude),
        ("database", check_database),
        ("runtime", check_runtime),
        ("sandbox", check_sandbox),
        ("github", check_github),
    ]
    for name, check in needs:
        if settings is None:
            checks.append(
                Check(name, "warn", "not checked: the settings are wrong", "fix the settings first")
            )
        else:
            checks.append(check(settings))
    checks.append(check_server(url, token))
    return checks
