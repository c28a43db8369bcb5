"""Event sequence numbers on a real store: unique and in creation order, also with writers racing on
PostgreSQL (run again on PostgreSQL by scripts/test)."""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator.store.db import Database
from orchestrator.store.events import EventStore
from tests.conftest import TEST_PG
from tests.support.postgres import new_database


def _url(tmp_path: Path) -> str:
    return new_database(TEST_PG) if TEST_PG else f"sqlite:///{tmp_path / 'e.db'}"


def test_writers_racing_never_share_a_seq(tmp_path: Path) -> None:
    url = _url(tmp_path)
    first = Database(url)
    first.migrate()
    databases = [Database(url) for _ in range(6)]
    stores = [EventStore(db) for db in databases]
    errors: list[BaseException] = []

    def write(n: int, store: EventStore) -> None:
        try:
            for i in range(20):
                store.create(f"w{n}-{i}", "task.assigned", None, None, {"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in databases:
        db.dispose()
    assert not errors, errors[:3]
    with first.read() as conn:
        seqs = [int(r[0]) for r in conn.exec_driver_sql("SELECT seq FROM events ORDER BY created_at, seq")]
    first.dispose()
    assert len(seqs) == 120
    assert sorted(seqs) == list(range(1, 121))
