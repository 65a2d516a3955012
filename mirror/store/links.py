"""Link files: tiny objects whose content is a digest (the reference registry's format)."""

from __future__ import annotations

from mirror.digests import Digest
from mirror.errors import DigestInvalid
from mirror.store.driver import PathNotFound, StorageDriver, stat_file


async def read_link(driver: StorageDriver, path: str) -> Digest | None:
    """The digest a link holds, or None when the link is missing or unreadable."""
    try:
        content = await driver.get_content(path)
    except PathNotFound:
        return None
    try:
        return Digest.parse(content.decode("ascii", "replace").strip())
    except DigestInvalid:
        return None


async def write_link(driver: StorageDriver, path: str, digest: Digest) -> None:
    await driver.put_content(path, str(digest).encode())


async def link_exists(driver: StorageDriver, path: str) -> bool:
    """Whether a file is at `path` (a directory there is none)."""
    try:
        await stat_file(driver, path)
    except PathNotFound:
        return False
    return True


async def path_exists(driver: StorageDriver, path: str) -> bool:
    """Whether anything, a directory too, is at `path`."""
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


async def remove(driver: StorageDriver, path: str) -> bool:
    """Delete `path` (file or tree); False when it was not there."""
    try:
        await driver.delete(path)
    except PathNotFound:
        return False
    return True
