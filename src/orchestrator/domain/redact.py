"""Secret redaction, applied to everything that reaches a log, an answer or the store."""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[REDACTED]"

_PATTERNS = [
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{10,}"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\"']+"),
    re.compile(r"(?i)(x-api-key:\s*)[^\s\"']+"),
    re.compile(r"(https?://)[^/\s:@\"']+:[^/\s@\"']+@"),
    re.compile(r"(https?://)[^/\s:@\"']{16,}@"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"(?i)(aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{30,}"),
    re.compile(r"(?i)(aws_session_token[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{30,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"),  # Google OAuth access token
    re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----[\s\S]*?(?:-----END[^-]*-----|$)"),
]


class Redactor:
    """Replaces known secret values and secret-looking patterns with a mark."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self._literal = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MARK, text)
        for pattern in _PATTERNS:
            if pattern.groups:
                text = pattern.sub(
                    lambda m: m.group(1) + MARK + ("@" if m.group(0).endswith("@") else ""), text
                )
            else:
                text = pattern.sub(MARK, text)
        return text
