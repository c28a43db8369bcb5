"""The API token the service generates when none is set: `<data>/api-token`, mode 0600, made once.

The service creates it at first start and reuses it after restarts; the CLI and the Python client read
it when they talk to a service on this machine and were given no token."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

FILE_NAME = "api-token"
_MAX_BYTES = 4096


class TokenFileError(Exception):
    """The token file exists but cannot be used; the message names the file."""


def token_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def read_token(data_dir: Path) -> str | None:
    """The token in the file, or None when there is none (or it is not ours to read)."""
    try:
        return _read(token_path(data_dir))
    except (OSError, TokenFileError):
        return None


def load_or_create(data_dir: Path) -> str:
    """The token of this data directory, generated and written atomically on the first call."""
    path = token_path(data_dir)
    with contextlib.suppress(FileNotFoundError):
        return _read(path, repair_mode=True)
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)  # fails if another process made the file first: then use theirs
    except FileExistsError:
        return _read(path, repair_mode=True)
    finally:
        os.unlink(temporary)
    return token


def remove_stale(data_dir: Path) -> None:
    """With a token set by the operator, a generated one left from before would only mislead the CLI."""
    with contextlib.suppress(FileNotFoundError):
        token_path(data_dir).unlink()


def _read(path: Path, *, repair_mode: bool = False) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise TokenFileError(f"{path}: cannot open the API token file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenFileError(f"{path}: the API token file is not a regular file")
        if repair_mode and stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        data = os.read(fd, _MAX_BYTES + 1)
    finally:
        os.close(fd)
    token = data.decode("ascii", errors="replace").strip()
    if not token or len(data) > _MAX_BYTES or not token.isprintable() or " " in token:
        raise TokenFileError(f"{path}: the API token file holds no usable token; delete it to get a new one")
    return token
