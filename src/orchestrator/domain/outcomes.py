"""What each agent type must end with: a JSON block in its final message, validated here."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.domain.types import AgentType


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="allow")


class StarterOutcome(_Outcome):
    summary: str = Field(min_length=1)
    steps: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    audit: bool = False


class CodingOutcome(_Outcome):
    summary: str = Field(min_length=1)
    branch: str | None = None
    tests: str | None = None


class ReviewOutcome(_Outcome):
    verdict: Literal["approve", "changes_requested"]
    comments: list[str] = Field(default_factory=list)


class DeployOutcome(_Outcome):
    deployed: bool
    details: str = ""


class VerifyOutcome(_Outcome):
    passed: bool
    evidence: list[str] = Field(default_factory=list)


class Finding(_Outcome):
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    severity: Literal["low", "medium", "high"] = "medium"


class AuditOutcome(_Outcome):
    findings: list[Finding] = Field(default_factory=list, max_length=50)


OUTCOME_MODELS: dict[
    AgentType,
    type[StarterOutcome | CodingOutcome | ReviewOutcome | DeployOutcome | VerifyOutcome | AuditOutcome],
] = {
    AgentType.STARTER: StarterOutcome,
    AgentType.CODING: CodingOutcome,
    AgentType.REVIEWER: ReviewOutcome,
    AgentType.DEPLOYER: DeployOutcome,
    AgentType.VERIFIER: VerifyOutcome,
    AgentType.AUDITOR: AuditOutcome,
}

_FENCED = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


class OutcomeError(ValueError):
    """The agent's final message has no valid outcome; the message says what is wrong."""


def _candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCED.finditer(text)]
    start = text.rfind("{")
    while start != -1 and not found:
        try:
            json.loads(text[start:])
            found.append(text[start:])
        except ValueError:
            start = text.rfind("{", 0, start)
    return found


Outcome = StarterOutcome | CodingOutcome | ReviewOutcome | DeployOutcome | VerifyOutcome | AuditOutcome


def parse_outcome(agent_type: AgentType, text: str | None) -> Outcome:
    if not text:
        raise OutcomeError("the agent's final message is empty")
    model = OUTCOME_MODELS[agent_type]
    last_error = "no JSON block found in the final message"
    for raw in reversed(_candidates(text)):
        try:
            data: Any = json.loads(raw)
        except ValueError as exc:
            last_error = f"the JSON block does not parse: {exc}"
            continue
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "outcome"
            last_error = f"{where}: {first['msg']}"
    raise OutcomeError(f"{agent_type.value} outcome invalid: {last_error}")
