"""An agent's log lines for a person: stream-json made readable, stdout and stderr in their own colours."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from orchestrator.cli.common import duration, money
from orchestrator.domain.stream_json import parse_line
from orchestrator.models import Agent, LogLine

SUMMARY_CHARS = 100
RESULT_CHARS = 120

# The input field that says what a tool call does, by tool.
_TOOL_KEYS = {
    "Bash": "command",
    "Read": "file_path",
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
    "Glob": "pattern",
    "Grep": "pattern",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
    "Agent": "description",
    "Skill": "skill",
}


def _short(text: str, limit: int) -> str:
    lines = text.strip().splitlines() or [""]
    first = lines[0]
    more = len(lines) > 1
    if len(first) > limit:
        first, more = first[: limit - 1], True
    return first + (" …" if more else "")


class Renderer:
    """Turns log lines into rich `Text`s; remembers the agent's working directory to shorten paths."""

    def __init__(self) -> None:
        self.cwd: str | None = None

    def line(self, item: LogLine) -> list[Text]:
        if item.stream == "stderr":
            return [Text(item.content, style="red")]
        obj = parse_line(item.content) if item.stream == "stdout" else None
        if obj is None:
            return [Text(item.content)]
        kind = obj.get("type")
        if kind == "system":
            return self._system(obj)
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "user":
            return self._user(obj)
        if kind == "result":
            return [self._result(obj)]
        return [Text(f"· {kind}: {_short(item.content, SUMMARY_CHARS)}", style="dim")]

    def _system(self, obj: dict[str, Any]) -> list[Text]:
        subtype = obj.get("subtype")
        if subtype == "init":
            self.cwd = obj.get("cwd") if isinstance(obj.get("cwd"), str) else None
            parts = [f"model {obj.get('model', '?')}", f"claude {obj.get('claude_code_version', '?')}"]
            if self.cwd:
                parts.append(f"in {self.cwd}")
            return [Text("● session started: " + ", ".join(parts), style="dim")]
        if subtype == "api_retry":
            detail = obj.get("error_status") or obj.get("error") or ""
            return [Text(f"↻ model API retry {obj.get('attempt', '')} {detail}".rstrip(), style="yellow")]
        return [Text(f"● {subtype or 'system'}", style="dim")]

    def _assistant(self, obj: dict[str, Any]) -> list[Text]:
        out: list[Text] = []
        for block in _blocks(obj):
            kind = block.get("type")
            if kind == "text" and str(block.get("text", "")).strip():
                out.append(Text(str(block["text"]).strip()))
            elif kind == "tool_use":
                name = str(block.get("name", "tool"))
                out.append(Text(f"▶ {name}: {self._tool_summary(name, block.get('input'))}", style="cyan"))
            elif kind == "thinking":
                out.append(
                    Text(f"✻ {_short(str(block.get('thinking', '')), SUMMARY_CHARS)}", style="dim italic")
                )
        return out

    def _user(self, obj: dict[str, Any]) -> list[Text]:
        out: list[Text] = []
        for block in _blocks(obj):
            if block.get("type") != "tool_result":
                continue
            text = _result_text(block.get("content"))
            if self.cwd:
                text = text.replace(self.cwd + "/", "")
            if block.get("is_error"):
                out.append(Text(f"◀ error: {_short(text, RESULT_CHARS)}", style="red"))
            else:
                out.append(Text(f"◀ result: {_short(text, RESULT_CHARS) or '(empty)'}", style="dim"))
        return out

    def _result(self, obj: dict[str, Any]) -> Text:
        subtype = obj.get("subtype")
        failed = bool(obj.get("is_error")) or subtype not in (None, "success")
        # The subtype, as the dashboard shows it; but a run that says is_error is no "success".
        head = str(subtype or "result")
        if obj.get("is_error") and head in ("success", "result"):
            head = "error"
        facts = [
            f"{obj['num_turns']} turns" if isinstance(obj.get("num_turns"), int) else None,
            money(obj["total_cost_usd"]) if isinstance(obj.get("total_cost_usd"), int | float) else None,
            duration(obj["duration_ms"]) if isinstance(obj.get("duration_ms"), int | float) else None,
        ]
        summary = ", ".join(f for f in facts if f)
        result = obj.get("result")
        if not isinstance(result, str) and isinstance(obj.get("errors"), list):
            result = "; ".join(str(e) for e in obj["errors"])
        said = f": {_short(result, RESULT_CHARS)}" if isinstance(result, str) and result.strip() else ""
        return Text(f"■ {head} ({summary}){said}", style="bold red" if failed else "bold green")

    def _tool_summary(self, name: str, raw: Any) -> str:
        if not isinstance(raw, dict):
            return ""
        key = _TOOL_KEYS.get(name)
        value = raw.get(key) if key else None
        if not isinstance(value, str):
            value = next((v for v in raw.values() if isinstance(v, str)), None)
        if value is None:
            value = json.dumps(raw, ensure_ascii=False)
        if self.cwd:
            value = value.replace(self.cwd + "/", "")
        return _short(value, SUMMARY_CHARS)


def _blocks(obj: dict[str, Any]) -> list[dict[str, Any]]:
    message = obj.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(parts) if parts else "(non-text result)"
    return "" if content is None else str(content)


def raw_text(item: LogLine) -> Text:
    """A line as the agent printed it, stderr in red."""
    return Text(item.content, style="red" if item.stream == "stderr" else "")


def ending(agent: Agent) -> Text:
    """The last line of a followed log: how the agent ended."""
    facts = [f"exit {agent.exit_code}" if agent.exit_code is not None else None]
    if agent.duration_ms is not None:
        facts.append(duration(agent.duration_ms))
    if agent.cost_usd is not None:
        facts.append(money(agent.cost_usd))
    said = ", ".join(f for f in facts if f)
    text = f"agent {agent.id} {agent.status.value}" + (f" ({said})" if said else "")
    if agent.error:
        text += f": {_short(agent.error, RESULT_CHARS)}"
    return Text(text, style="bold green" if agent.status == "completed" else "bold red")
