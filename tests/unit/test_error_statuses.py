"""Only api/errors.py turns errors into HTTP statuses; every kind of the service's errors has one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import orchestrator.api
from orchestrator import errors
from orchestrator.agents.live_log import resume_cursor
from orchestrator.agents.manager import AgentError, AgentTakenOver
from orchestrator.api.errors import STATUS, status_of
from orchestrator.domain.queue_rules import SettingError
from orchestrator.forge import errors as forge
from orchestrator.store.db import StoreError, StoreUnavailable
from orchestrator.store.queue import QueueConflict, QueueNotFound
from orchestrator.store.tasks import TaskBusy
from orchestrator.webhooks.targets import TargetRefused

API_DIR = Path(orchestrator.api.__file__).parent
# keywords whose numbers are bounds of a request's values, not statuses
_BOUNDS = {"ge", "gt", "le", "lt", "max_length", "min_length"}


def _status_like_numbers(tree: ast.AST) -> list[int]:
    bounds = {
        id(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg in _BOUNDS
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        and 400 <= node.value < 600
        and id(node) not in bounds
    ]


def _http_exceptions(tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id.endswith("HTTPException"))
        or (isinstance(node, ast.Attribute) and node.attr.endswith("HTTPException"))
        or (isinstance(node, ast.alias) and node.name.split(".")[-1] in ("HTTPException", "status"))
    ]


@pytest.mark.parametrize("path", sorted(p for p in API_DIR.glob("*.py") if p.name != "errors.py"), ids=str)
def test_no_api_module_but_errors_chooses_an_error_status(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    assert _status_like_numbers(tree) == [], f"{path.name}: an error status; raise a service error instead"
    assert _http_exceptions(tree) == [], f"{path.name}: HTTPException; raise a service error instead"


def test_the_scan_finds_what_it_looks_for() -> None:
    source = (
        "from fastapi import HTTPException\n"
        "def f(limit: int = Query(le=500)):\n"
        "    raise HTTPException(404, 'x')\n"
        "def g():\n"
        "    return JSONResponse({}, status_code=503)\n"
    )
    tree = ast.parse(source)
    assert _status_like_numbers(tree) == [3, 5]
    assert _http_exceptions(tree) == [1, 3]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ServiceError("x"), 400),
        (errors.Invalid("x", field="f"), 422),
        (errors.Gone("x"), 410),
        (errors.Throttled("x", retry_after=3), 429),
        (AgentError("x", 404), 404),
        (AgentError("x", 409), 409),
        (AgentError("x", 503), 503),
        (AgentTakenOver("x", 409), 409),
        (TaskBusy("t"), 409),
        (QueueConflict("x"), 409),
        (QueueNotFound("x"), 404),
        (SettingError("x"), 422),
        (TargetRefused("x"), 422),
        (StoreError("x"), 503),
        (StoreUnavailable("x"), 503),
        (forge.ForgeFailed("x"), 502),
        (forge.GitError("x"), 502),
        (forge.ForgeInputError("repo", "x"), 422),
        (forge.ValidationFailed("x"), 422),
        (forge.NotConfigured("x"), 409),
        (forge.NotFound("x"), 404),
        (forge.Unauthorized("x"), 401),
        (forge.Forbidden("x"), 403),
        (forge.PushRejected("x"), 409),
        (forge.NotMergeable("x"), 409),
        (forge.ForgeUnavailable("x"), 503),
        (forge.RateLimited("x", retry_after=60), 503),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_each_error_answers_with_the_status_of_its_kind(error: errors.ServiceError, status: int) -> None:
    assert status_of(error) == status


def test_every_kind_has_a_status() -> None:
    kinds = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, errors.ServiceError)]
    assert set(kinds) == set(STATUS)


def test_an_agent_error_keeps_its_status_and_message() -> None:
    error = AgentError("agent 'x' not found", 404)
    assert isinstance(error, errors.NotFound) and error.status == 404 and str(error) == "agent 'x' not found"


def test_the_database_says_what_failed_and_when_to_retry() -> None:
    assert StoreUnavailable("locked").detail == "database unavailable, retry later: locked"
    assert StoreError("bad").detail == "database error: bad" and StoreError("bad").retry_after == 1


@pytest.mark.parametrize("cursor", ["12", " 12 ", "0"])
def test_a_resume_cursor_is_a_line_id(cursor: str) -> None:
    assert resume_cursor(cursor) == int(cursor)


@pytest.mark.parametrize("cursor", ["", "-1", "1e3", "١٢", "9" * 20, str(2**63)])
def test_a_resume_cursor_that_is_not_a_line_id_is_invalid(cursor: str) -> None:
    with pytest.raises(errors.Invalid, match=r"^Last-Event-ID: must be a log line id$"):
        resume_cursor(cursor)
