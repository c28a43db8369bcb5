"""A typed Python client for the orchestrator's HTTP API, blocking (`Client`) or asyncio (`AsyncClient`).

from orchestrator.client import Client, LogEnd

with Client("http://127.0.0.1:3020", token="...") as client:
    agent = client.spawn_agent("coding", "add a README")
    for event in client.stream_logs(agent.id):
        if isinstance(event, LogEnd):
            print("ended:", event.agent.status)
        else:
            print(event.stream, event.content)
"""

from orchestrator.client.aio import AsyncClient
from orchestrator.client.base import DEFAULT_URL, TOKEN_ENV, URL_ENV
from orchestrator.client.errors import (
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    OrchestratorError,
    ServerError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from orchestrator.client.retry import RetryPolicy
from orchestrator.client.stream import LogEnd, LogEvent
from orchestrator.client.sync import Client

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "URL_ENV",
    "AsyncClient",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "InvalidRequest",
    "LogEnd",
    "LogEvent",
    "NotFound",
    "OrchestratorError",
    "RetryPolicy",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
]
