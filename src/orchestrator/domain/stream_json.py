"""Reading the `claude` CLI's stream-json output: by `type`/`subtype`, never by position."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_SESSION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_session_id(value: object) -> bool:
    """The CLI's session ids are UUIDs; anything else an agent printed is not passed back as `--resume`."""
    return isinstance(value, str) and _SESSION_ID.match(value) is not None


def parse_line(line: str) -> dict[str, Any] | None:
    """The JSON object on a line, or None for anything else (blank, text, arrays, broken JSON)."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


@dataclass
class RunSummary:
    """What a run said about itself, accumulated line by line."""

    session_id: str | None = None
    model: str | None = None
    cli_version: str | None = None
    result_seen: bool = False
    is_error: bool | None = None
    subtype: str | None = None
    terminal_reason: str | None = None
    api_error_status: int | None = None
    result_text: str | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    num_turns: int | None = None
    duration_ms: int | None = None
    tool_calls: int = 0
    assistant_messages: int = 0
    api_retries: int = 0
    permission_denials: int = 0
    tokens_in_seen: int = 0
    tokens_out_seen: int = 0
    same_tool_repeats: int = 0
    last_tool: str | None = None
    _message_ids: set[str] = field(default_factory=set, repr=False)

    def feed(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if is_session_id(obj.get("session_id")):
            self.session_id = obj["session_id"]
        if kind == "system":
            self._feed_system(obj)
        elif kind == "assistant":
            self._feed_assistant(obj)
        elif kind == "result":
            self._feed_result(obj)

    def _feed_system(self, obj: dict[str, Any]) -> None:
        subtype = obj.get("subtype")
        if subtype == "init":
            if isinstance(obj.get("model"), str):
                self.model = obj["model"]
            if isinstance(obj.get("claude_code_version"), str):
                self.cli_version = obj["claude_code_version"]
        elif subtype == "api_retry":
            self.api_retries += 1

    def _feed_assistant(self, obj: dict[str, Any]) -> None:
        message = obj.get("message")
        if not isinstance(message, dict):
            return
        message_id = message.get("id")
        if isinstance(message_id, str) and message_id not in self._message_ids:
            self._message_ids.add(message_id)
            self.assistant_messages += 1
            usage = message.get("usage")
            if isinstance(usage, dict):
                for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                    self.tokens_in_seen += _int(usage.get(key)) or 0
                self.tokens_out_seen += _int(usage.get("output_tokens")) or 0
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    self.tool_calls += 1
                    signature = json.dumps([block.get("name"), block.get("input")], sort_keys=True)
                    self.same_tool_repeats = self.same_tool_repeats + 1 if signature == self.last_tool else 1
                    self.last_tool = signature

    def _feed_result(self, obj: dict[str, Any]) -> None:
        self.result_seen = True
        self.is_error = bool(obj.get("is_error"))
        self.subtype = obj.get("subtype") if isinstance(obj.get("subtype"), str) else None
        self.terminal_reason = (
            obj.get("terminal_reason") if isinstance(obj.get("terminal_reason"), str) else None
        )
        self.api_error_status = _int(obj.get("api_error_status"))
        result = obj.get("result")
        self.result_text = result if isinstance(result, str) else None
        errors = obj.get("errors")
        if self.result_text is None and isinstance(errors, list) and errors:
            self.result_text = "; ".join(str(e) for e in errors)
        self.cost_usd = _float(obj.get("total_cost_usd"))
        self.num_turns = _int(obj.get("num_turns"))
        self.duration_ms = _int(obj.get("duration_ms"))
        denials = obj.get("permission_denials")
        self.permission_denials = len(denials) if isinstance(denials, list) else 0
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = _int(usage.get("input_tokens"))
            self.output_tokens = _int(usage.get("output_tokens"))
            self.cache_read_tokens = _int(usage.get("cache_read_input_tokens"))
            self.cache_creation_tokens = _int(usage.get("cache_creation_input_tokens"))

    def metadata(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "model": self.model,
            "cli_version": self.cli_version,
            "result_seen": self.result_seen,
            "is_error": self.is_error,
            "subtype": self.subtype,
            "terminal_reason": self.terminal_reason,
            "api_error_status": self.api_error_status,
            "result": self.result_text,
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "num_turns": self.num_turns,
            "duration_ms": self.duration_ms,
            "tool_calls": self.tool_calls,
            "assistant_messages": self.assistant_messages,
            "api_retries": self.api_retries,
            "permission_denials": self.permission_denials,
        }
