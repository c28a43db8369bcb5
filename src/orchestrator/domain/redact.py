"""Secret redaction, applied to everything that reaches a log, an answer or the store."""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[REDACTED]"

# Each pattern with the literal pieces one of which any match contains: a line with none of them is not
# searched with the pattern. Case-insensitive patterns name their pieces in lower case and are gated only
# on ASCII text, where str.lower() and the regex engine agree on case.
_PATTERNS: list[tuple[re.Pattern[str], tuple[str, ...], bool]] = [
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"), ("gh",), False),
    (re.compile(r"github_pat_[A-Za-z0-9_]{20,}"), ("github_pat_",), False),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{10,}"), ("sk-ant-",), False),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\"']+"), ("authorization",), True),
    (re.compile(r"(?i)(x-api-key:\s*)[^\s\"']+"), ("x-api-key",), True),
    (re.compile(r"(https?://)[^/\s:@\"']+:[^/\s@\"']+@"), ("://",), False),
    (re.compile(r"(https?://)[^/\s:@\"']{16,}@"), ("://",), False),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), ("AKIA", "ASIA"), False),  # AWS access key id
    (
        re.compile(r"(?i)(aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{30,}"),
        ("aws_secret_access_key",),
        True,
    ),
    (
        re.compile(r"(?i)(aws_session_token[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{30,}"),
        ("aws_session_token",),
        True,
    ),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), ("AIza",), False),  # Google API key
    (re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), ("ya29.",), False),  # Google OAuth access token
    (
        re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----[\s\S]*?(?:-----END[^-]*-----|$)"),
        ("-----BEGIN ",),
        False,
    ),
]


# On short lines one search for all the pieces beats testing each piece (on long ones, the reverse).
_SHORT = 256
_CASED_PIECES = re.compile(
    "|".join(re.escape(p) for _, pieces, folded in _PATTERNS if not folded for p in pieces)
)
_FOLDED_PIECES = re.compile(
    "|".join(re.escape(p) for _, pieces, folded in _PATTERNS if folded for p in pieces)
)


def _short_and_plain(text: str) -> bool:
    """A short line with no piece of any pattern in it."""
    return (
        len(text) <= _SHORT
        and text.isascii()
        and _CASED_PIECES.search(text) is None
        and _FOLDED_PIECES.search(text.lower()) is None
    )


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + MARK + ("@" if match.group(0).endswith("@") else "")


class Redactor:
    """Replaces known secret values and secret-looking patterns with a mark."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self._values = tuple(values)
        self._literal = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def finds_nothing_in(self, text: str) -> bool:
        """True when no secret value and no piece of any pattern occurs anywhere in `text`: then no part
        of it, a line say, has anything to redact (one search for many lines)."""
        return (
            not any(value in text for value in self._values)
            and text.isascii()
            and _CASED_PIECES.search(text) is None
            and _FOLDED_PIECES.search(text.lower()) is None
        )

    def __call__(self, text: str) -> str:
        if self._literal is not None:
            for value in self._values:
                if value in text:
                    text = self._literal.sub(MARK, text)
                    break
        if _short_and_plain(text):
            return text
        folded = text.lower() if text.isascii() else None
        for pattern, pieces, ignore_case in _PATTERNS:
            haystack = folded if ignore_case else text
            if haystack is not None:
                for piece in pieces:
                    if piece in haystack:
                        break
                else:
                    continue
            text = pattern.sub(_keep_prefix if pattern.groups else MARK, text)
        return text
