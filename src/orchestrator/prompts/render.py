from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from orchestrator.domain.types import AgentType

TEMPLATES_DIR = Path(__file__).parent / "templates"


@cache
def _template(agent_type: AgentType) -> Template:
    return Template((TEMPLATES_DIR / f"{agent_type.value}.md").read_text())


def render(agent_type: AgentType, context: dict[str, str]) -> str:
    """The prompt of an agent type; unknown placeholders stay visible rather than failing."""
    return _template(agent_type).safe_substitute(context).strip() + "\n"
