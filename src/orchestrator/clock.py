from datetime import UTC, datetime


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with milliseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso_at(epoch: float) -> str:
    """The ISO-8601 UTC timestamp of a Unix time, in the same form as utc_now."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
