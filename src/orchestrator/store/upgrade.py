"""The migration process: `python -m orchestrator.store.upgrade` reads a database URL on stdin and brings
that database to this version's schema with Alembic; its log goes to stderr, a failure exits 1 with the
reason on the last line. The service runs it at each start (store/db.py `Database.migrate`)."""

from __future__ import annotations

import logging
import sys

from orchestrator.store.db import Database


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    url = sys.stdin.read().strip()
    if not url:
        print("no database URL on stdin", file=sys.stderr)
        return 2
    db = Database(url)
    try:
        db.upgrade_here()
    except Exception as exc:  # the service shows the last line as the reason its start failed
        logging.getLogger("orchestrator.store.upgrade").exception("migration failed")
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
