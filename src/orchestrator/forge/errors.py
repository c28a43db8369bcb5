"""GitHub and git failures, each of a kind of the service's errors; the message never carries a token."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from orchestrator import errors


class ForgeError(errors.ServiceError):
    """Base of every GitHub and git failure."""


class ForgeFailed(ForgeError, errors.Upstream):
    """GitHub or git failed, or answered what it should not."""


class ForgeInputError(ForgeError, errors.Invalid, ValueError):
    """A repository, branch or path name from a request that is not acceptable."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotConfigured(ForgeError, errors.Conflict):
    pass


class NotFound(ForgeError, errors.NotFound):
    pass


class Unauthorized(ForgeError, errors.Unauthorized):
    """GitHub refused the token."""


class Forbidden(Unauthorized, errors.Forbidden):
    """GitHub refused the token access to what was asked."""


class Conflict(ForgeError, errors.Conflict):
    pass


class NotMergeable(Conflict):
    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class PushRejected(Conflict):
    pass


class ValidationFailed(ForgeError, errors.Invalid):
    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class ForgeUnavailable(ForgeError, errors.Unavailable):
    """GitHub or the git remote cannot answer now (5xx, connection refused, timeout)."""

    retry_after: float

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ForgeUnavailable):
    """GitHub's rate limit would need a longer wait than allowed; `retry_at` says when to try again."""

    def __init__(self, message: str, *, retry_after: float, now: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        start = time.time() if now is None else now
        self.retry_at = datetime.fromtimestamp(start + retry_after, tz=UTC)


class GitError(ForgeFailed):
    pass


class UnknownRepository(ForgeError, errors.Invalid):
    """A task's repository that is neither under PROJECTS_DIR nor at GITHUB_GIT_URL."""

    def __init__(self, repo: str, url: str, detail: str) -> None:
        super().__init__(
            f"repository {repo!r} is not under PROJECTS_DIR, and {url} does not have it (or the token "
            f"cannot read it): {detail}",
            field="repo",
        )
