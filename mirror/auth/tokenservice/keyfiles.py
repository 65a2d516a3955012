"""Writing key files so that a reader never sees half of one and two writers agree."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _write_temporary(path: Path, data: bytes, mode: int) -> Path:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, mode)  # the umask may have narrowed it
    return temporary


def create(path: Path, data: bytes, *, mode: int) -> bool:
    """Create `path` with `data` unless it exists; True when this call created it.

    `link` refuses to replace an existing file, so of two processes starting at once
    exactly one creates it and the other keeps the winner's content.
    """
    temporary = _write_temporary(path, data, mode)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True


def replace(path: Path, data: bytes, *, mode: int) -> None:
    """Atomically put `data` at `path` (readers see the old file or the new one)."""
    temporary = _write_temporary(path, data, mode)
    os.replace(temporary, path)
