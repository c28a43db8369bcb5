"""orchestrator: runs fleets of Claude Code agents."""

__version__ = "0.1.0"
