"""One exception hierarchy for GitHub and git: a message safe to show, and the HTTP status it answers."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class ForgeError(Exception):
    """Base of every GitHub and git failure; the message never carries a token."""

    status: int = 502

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class ForgeInputError(ForgeError, ValueError):
    """A repository, branch or path name from a request that is not acceptable."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotConfigured(ForgeError):
    status = 409


class NotFound(ForgeError):
    status = 404


class Unauthorized(ForgeError):
    """GitHub refused the token (401) or its access (403)."""

    status = 401


class Conflict(ForgeError):
    status = 409


class NotMergeable(Conflict):
    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class PushRejected(Conflict):
    pass


class ValidationFailed(ForgeError):
    status = 422

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class ForgeUnavailable(ForgeError):
    """GitHub or the git remote cannot answer now (5xx, connection refused, timeout)."""

    status = 503

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ForgeUnavailable):
    """GitHub's rate limit would need a longer wait than allowed; `retry_at` says when to try again."""

    def __init__(self, message: str, *, retry_after: float, now: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        start = time.time() if now is None else now
        self.retry_at = datetime.fromtimestamp(start + retry_after, tz=UTC)


class GitError(ForgeError):
    status = 502
