import re
import secrets

from orchestrator.domain.types import AgentType

AGENT_ID_PATTERN = re.compile(r"^(starter|coding|reviewer|deployer|verifier|auditor)-[0-9a-f]{8}$")


def new_agent_id(agent_type: AgentType) -> str:
    return f"{agent_type.value}-{secrets.token_hex(4)}"


def is_agent_id(value: str) -> bool:
    return AGENT_ID_PATTERN.match(value) is not None
