"""Migrations run in a child process of their own: the schema reaches head, a failure comes back with the
child's reason, and instances that start at once on one PostgreSQL database migrate it one at a time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.store.db import HEAD_REVISION, Database, MigrationFailed
from tests.conftest import TEST_PG
from tests.support.postgres import new_database


def test_a_new_database_reaches_head_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert db.schema_revision() is None
        db.migrate()
        assert db.schema_revision() == HEAD_REVISION
        db.migrate()
        assert db.schema_revision() == HEAD_REVISION
    finally:
        db.dispose()


def test_a_failed_migration_raises_with_the_childs_reason(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        db.migrate()
        with db.write() as conn:  # a revision this version does not know: a newer service migrated it
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(MigrationFailed, match="9999"):
            db.migrate()
    finally:
        db.dispose()


def test_a_package_in_the_working_directory_does_not_run_as_the_migration(tmp_path: Path) -> None:
    """The service's working directory is not its code: an `orchestrator` package there stays unread."""
    hostile = tmp_path / "cwd" / "orchestrator"
    hostile.mkdir(parents=True)
    marker = tmp_path / "ran"
    (hostile / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(7)\n")
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    before = Path.cwd()
    os.chdir(hostile.parent)
    try:
        db.migrate()
    finally:
        os.chdir(before)
        db.dispose()
    assert not marker.exists()
    assert db.schema_revision() == HEAD_REVISION


@pytest.mark.skipif(not TEST_PG, reason="needs the tests' PostgreSQL: scripts/test starts one")
def test_instances_starting_at_once_on_postgresql_migrate_one_after_the_other() -> None:
    assert TEST_PG is not None
    url = new_database(TEST_PG)
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(url)
        try:
            db.migrate()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = Database(url)
    try:
        assert db.schema_revision() == HEAD_REVISION
    finally:
        db.dispose()
