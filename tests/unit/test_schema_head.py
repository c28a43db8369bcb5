"""The service knows the newest migration without loading Alembic: the constant must follow the scripts."""

from alembic.config import Config
from alembic.script import ScriptDirectory

from orchestrator.store.db import HEAD_REVISION, MIGRATIONS_DIR, Database


def test_head_revision_constant_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [HEAD_REVISION], f"a new migration? set HEAD_REVISION in store/db.py to {heads}"
    assert Database.head_revision() == HEAD_REVISION
