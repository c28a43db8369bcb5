"""Prompts of the six agent types, rendered from template files."""
