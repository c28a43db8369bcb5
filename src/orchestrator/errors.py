"""The service's exceptions, by kind of refusal. Each carries a message safe to show to the caller;
`api/errors.py` alone decides which HTTP status each kind answers with."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses or cannot do now."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def detail(self) -> str:
        """The text the caller is shown; a kind may put its context around the bare message."""
        return self.message


class BadRequest(ServiceError):
    """The request cannot be read at all (not a field's value: that is Invalid)."""


class Invalid(ServiceError):
    """A value in the request is not acceptable; `field` names it when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(ServiceError):
    """What the request names does not exist."""


class Gone(NotFound):
    """What the request asks for was removed from the service for good."""


class Conflict(ServiceError):
    """The request does not fit the current state of what it names."""


class Unavailable(ServiceError):
    """The service cannot do it now; it may later (`retry_after` seconds, when known)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(Unavailable):
    """The caller asks more often than the service allows; it may ask again after `retry_after`."""


class Unauthorized(ServiceError):
    """The caller did not prove who it is; `challenge` names the scheme it should use."""

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(Unauthorized):
    """The caller may not have this, whoever it is."""


class Upstream(ServiceError):
    """A system the service relies on (GitHub, git) failed or answered what it should not."""


class TooLarge(ServiceError):
    """The request's body is over the service's limit."""


class Misdirected(ServiceError):
    """The request was meant for another host than this service."""
