"""Throwaway databases on the tests' PostgreSQL (scripts/ci-postgres)."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, text

from orchestrator.store.db import driver_url


def new_database(server_url: str, prefix: str = "orch") -> str:
    """Creates an empty database on the server of `server_url`; its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    engine = create_engine(driver_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
