"""Live agent logs over SSE, without I/O: a line-fed SSE decoder, and the bookkeeping of a follower that
resumes a dropped stream from the last line it delivered (`Last-Event-ID`), so no line is lost or doubled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import BaseModel

from orchestrator.client.errors import ConnectionFailed, OrchestratorError, Unavailable, UnexpectedResponse
from orchestrator.client.retry import RetryPolicy
from orchestrator.models import Agent, LogLine


class LogEnd(BaseModel):
    """The last event of a log stream: the agent has ended, as it stands."""

    agent: Agent


LogEvent = LogLine | LogEnd


@dataclass
class ServerSentEvent:
    event: str
    id: str | None
    data: str


@dataclass
class SSEDecoder:
    """Feed it the lines of an event stream; it returns an event at each blank line that ends one."""

    _event: str = ""
    _id: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ServerSentEvent | None:
        if line == "":
            if not self._data and not self._event:
                return None
            event = ServerSentEvent(self._event or "message", self._id, "\n".join(self._data))
            self._event, self._id, self._data = "", None, []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


class LogFollower:
    """One `stream_logs` call: what to ask for on each (re)connection, and what each event means."""

    def __init__(self, agent_id: str, after: int, reconnect: RetryPolicy, url: str) -> None:
        self.agent_id = agent_id
        self.after = after
        self.last: int | None = None
        self.reconnect = reconnect
        self.url = url
        self.failures = 0
        self.decoder = SSEDecoder()

    def connect(self) -> tuple[dict[str, str | int], dict[str, str]]:
        """Query parameters and headers for the next connection, with a fresh decoder."""
        self.decoder = SSEDecoder()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        return {"after": self.after}, headers

    def check(self, content_type: str) -> None:
        """A 200 that is not an event stream (a proxy's page, an old server) is not worth retrying."""
        if not content_type.startswith("text/event-stream"):
            raise UnexpectedResponse(
                f"log stream of {self.agent_id}: got {content_type or 'no content type'}"
            )

    def feed(self, line: str) -> LogEvent | None:
        event = self.decoder.feed(line)
        if event is None:
            return None
        try:
            if event.event == "log":
                item = LogLine.model_validate({**json.loads(event.data), "agent_id": self.agent_id})
                if self.last is not None and item.id <= self.last:
                    return None  # delivered already: never twice
                self.last = item.id
                self.failures = 0
                return item
            if event.event == "end":
                return LogEnd(agent=Agent.model_validate_json(event.data))
        except ValueError as exc:  # broken JSON, or not the model (pydantic's errors are ValueErrors)
            raise UnexpectedResponse(
                f"log stream of {self.agent_id}: unreadable {event.event} event: {exc}"
            ) from None
        return None

    def dropped(self, reason: str, retry_after: float | None = None) -> float:
        """Seconds to wait before reconnecting; raises ConnectionFailed when the attempts are spent."""
        self.failures += 1
        wait = self.reconnect.delay(self.failures, retry_after)
        if wait is None:
            raise ConnectionFailed(
                f"log stream of {self.agent_id} from {self.url} lost after {self.failures} tries: {reason}"
            )
        return wait

    def refused(self, error: OrchestratorError) -> float:
        """An error answer to a (re)connection: wait and retry a 503, raise anything else."""
        if isinstance(error, Unavailable):
            return self.dropped(error.detail, error.retry_after)
        raise error
