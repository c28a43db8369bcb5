"""A tiny stdio MCP server for the tests: JSON-RPC 2.0, one message a line, on stdin and stdout.

It answers `initialize`, `tools/list` and `tools/call` for one tool, `mark`, whose answer is
`marked <note>; secret <value of MARKER_SECRET>; cwd <its working directory>`: what reached the model
then shows that the tool ran, what its environment held, and where it ran. Standard library only, so
it runs with any `python3` (inside an agent's sandbox, or an image that has one)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TOOL = {
    "name": "mark",
    "description": "Leaves a mark and says what it was given.",
    "inputSchema": {
        "type": "object",
        "properties": {"note": {"type": "string"}},
        "required": ["note"],
    },
}


def answer(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "marker", "version": "1.0"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        note = str((params.get("arguments") or {}).get("note", ""))
        said = f"marked {note}; secret {os.environ.get('MARKER_SECRET', '')}; cwd {os.getcwd()}"
        return {"content": [{"type": "text", "text": said}], "isError": False}
    if method == "ping":
        return {}
    return None


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "id" not in message:  # a notification (notifications/initialized, cancelled): no answer
            continue
        result = answer(str(message.get("method")), message.get("params") or {})
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if result is None:
            reply["error"] = {"code": -32601, "message": f"no method {message.get('method')}"}
        else:
            reply["result"] = result
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
