"""Engine, connections and migrations. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE for writes."""

from __future__ import annotations

import logging
import os
import site
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from orchestrator.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration's revision: what this version of the service brings the database to, known without
# Alembic (tests/unit/test_schema_head.py holds it equal to Alembic's head).
HEAD_REVISION = "0012"
# Instances that start at once on one PostgreSQL database migrate it one after the other.
PG_MIGRATION_LOCK = 0x6F7263686D6967  # "orchmig"
log = logging.getLogger("orchestrator.store")
SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL session left this long inside a transaction (its instance frozen or cut off mid-write) is
# ended by the server, so that the row locks it holds stop no other instance from taking its work over.
PG_IDLE_IN_TRANSACTION_MS = 5_000


class StoreError(Unavailable):
    """The database could not do what was asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1)

    @property
    def detail(self) -> str:
        return f"database error: {self.message}"


class MigrationFailed(StoreError):
    """The migration process could not bring the database to this version's schema."""

    @property
    def detail(self) -> str:
        return f"database migration failed: {self.message}"


class StoreUnavailable(StoreError):
    """The database is locked, full or unreachable for now: try again later."""

    @property
    def detail(self) -> str:
        return f"database unavailable, retry later: {self.message}"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _private_sqlite_file(path: Path) -> None:
    """The database file (and the -wal/-shm files SQLite makes with its mode) readable by this user only:
    it holds every prompt, log and webhook secret."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists() and name.stat().st_uid == os.geteuid():
            os.chmod(name, 0o600)


def driver_url(url: str) -> str:
    """PostgreSQL goes through psycopg 3 (sync and async in one maintained driver, binary wheels)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str) -> None:
        url = driver_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._watched: str | None = None
        self._watcher: sqlite3.Connection | None = None
        self._watcher_lock = threading.Lock()
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not path.startswith("file:"):
                _private_sqlite_file(Path(path))
                self._watched = path
            self.engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                connect_args={
                    "options": f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}"
                },
            )
        self._writer = self.engine.execution_options(write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with translate_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with translate_errors(), self._writer.begin() as conn:
            yield conn

    def migrate(self) -> None:
        """Brings the database to this version's schema in a child process (`orchestrator.store.upgrade`,
        same interpreter and environment), so that Alembic and its templates never load into the
        long-lived service; its output goes to this process's log. An in-memory database exists only
        here: it is migrated in this process."""
        if self.is_sqlite and self._watched is None:
            self.upgrade_here()
            return
        # -P: no module from the working directory; this process's own copy of the package comes first
        package_root = str(Path(__file__).resolve().parents[2])
        interpreter, packages = sys.executable, []
        if not os.access(interpreter, os.X_OK):
            # its path runs through a directory this user may not enter (a virtualenv made by root, a
            # service run unprivileged): the running binary itself, told where this process's packages are
            interpreter, packages = "/proc/self/exe", site.getsitepackages()
        paths = [package_root, *packages, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        proc = subprocess.run(
            [interpreter, "-P", "-m", "orchestrator.store.upgrade"],
            input=self.url,  # on stdin: a URL with a password is not for the process list
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
            capture_output=True,
            text=True,
            check=False,
        )
        output = (proc.stdout + proc.stderr).splitlines()
        for line in output:
            log.info("migration: %s", line)
        if proc.returncode != 0:
            reason = next((line for line in reversed(output) if line.strip()), "")
            raise MigrationFailed(f"exit {proc.returncode}: {reason}")

    def upgrade_here(self) -> None:
        """Alembic's upgrade to head in this process (the migration process's work)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with translate_errors(), self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def schema_revision(self) -> str | None:
        """The migration the database is at (None: never migrated); reads only."""
        with self.read() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    @staticmethod
    def head_revision() -> str:
        """The migration this version of the service brings the database to."""
        return HEAD_REVISION

    def serialize(self, conn: Connection, table: Table) -> None:
        """Makes writers of `table` take turns until this transaction ends, where they would not already
        (SQLite writes one transaction at a time; PostgreSQL gets a table lock that reads pass)."""
        if not self.is_sqlite:
            name = conn.dialect.identifier_preparer.format_table(table)
            conn.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def change_counter(self) -> int | None:
        """A number that changes whenever a change to the database commits, from any connection or
        process (SQLite's data_version, on a connection of its own that never writes); None where there
        is none (PostgreSQL, an in-memory database) or it cannot be read: then cache nothing on it."""
        if self._watched is None:
            return None
        with self._watcher_lock:
            try:
                if self._watcher is None:
                    self._watcher = sqlite3.connect(
                        self._watched, timeout=0.1, isolation_level=None, check_same_thread=False
                    )
                return int(self._watcher.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                return None

    def dispose(self) -> None:
        with self._watcher_lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
        self.engine.dispose()


_UNAVAILABLE_MARKERS = (
    "database is locked",
    "disk is full",
    "disk i/o error",
    "unable to open",
    "connection",
)


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise _operational(str(exc.orig) if exc.orig is not None else str(exc)) from exc
    except DBAPIError as exc:
        raise StoreError(str(exc.orig) if exc.orig is not None else str(exc)) from exc
    except sqlite3.OperationalError as exc:  # a statement run on the driver's connection (log_writes.py)
        raise _operational(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc
    except PoolTimeout as exc:
        raise StoreUnavailable(f"no database connection free: {exc}") from exc


def _operational(message: str) -> StoreError:
    if any(marker in message.lower() for marker in _UNAVAILABLE_MARKERS):
        return StoreUnavailable(message)
    return StoreError(message)
