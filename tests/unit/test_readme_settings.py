"""README lists every setting the service reads from its environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from orchestrator.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        elif alias:
            names.add(str(alias))
    assert names, "the settings name their variables"
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert missing == [], f"settings README does not name: {missing}"
