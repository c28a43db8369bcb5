"""The delivery signature, Stripe style: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The
timestamp is signed with the body, so a captured delivery is good only within the receiver's window."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Orchestrator-Signature"
REPLAY_WINDOW_SECONDS = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, now: float, window: float = REPLAY_WINDOW_SECONDS) -> bool:
    """What a receiver does: the header parses, the timestamp is within the window, and one v1 matches."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > window:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
