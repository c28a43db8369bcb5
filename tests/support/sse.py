"""A small SSE reader for tests: yields (event, id, data) as the server sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    id: str | None
    data: Any


def events(response: httpx.Response) -> Iterator[Event]:
    name, event_id, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                raw = "\n".join(data)
                yield Event(name, event_id, json.loads(raw) if raw[:1] in "{[" else raw)
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
