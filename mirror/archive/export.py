"""Writing a selection of the store as an archive (see `mirror.archive.format`).

The index and the blob list come first (the selection knows them before a byte is
copied), then each blob is streamed from the store: copied by the kernel from a local
driver's file, else read through the driver in chunks. Nothing is held whole but the
index; memory does not grow with the size of the store.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mirror.archive.format import (
    INDEX,
    LAYOUT,
    LAYOUT_CONTENT,
    LIST,
    ArchiveInvalid,
    blob_member,
    index_json,
    list_json,
    member_digest,
    parse_list,
)
from mirror.archive.selection import Selection
from mirror.archive.tarreader import forget_members
from mirror.archive.tarwriter import TarWriter
from mirror.digests import Digest
from mirror.store.store import Store


class Progress(Protocol):
    """Told how a long transfer goes (a terminal shows it; elsewhere it does nothing)."""

    def start(self, total: int, items: int) -> None: ...

    def advance(self, amount: int) -> None: ...

    def item(self, name: str) -> None: ...


class NoProgress:
    def start(self, total: int, items: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def item(self, name: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ExportResult:
    entries: int
    blobs: int  # written into the archive
    bytes: int  # of blob content written
    skipped: int  # blobs the earlier archive (--since) has
    left_out: int  # referenced, not stored


async def write_archive(
    store: Store,
    selection: Selection,
    fd: int,
    *,
    since: Iterable[Digest] = (),
    progress: Progress | None = None,
) -> ExportResult:
    """Write `selection` to the file descriptor `fd` as one tar (the caller closes it).

    Blobs in `since` (what an earlier archive has) are listed, not written.
    """
    progress = progress or NoProgress()
    have = set(since)
    todo = [(d, size) for d, size in selection.blobs.items() if d not in have]
    progress.start(sum(size for _, size in todo), len(todo))
    tar = TarWriter(fd, mtime=time.time())
    await tar.file(LAYOUT, LAYOUT_CONTENT)
    await tar.file(INDEX, index_json(selection.entries))
    await tar.file(LIST, list_json(list(selection.blobs)))
    directories: set[str] = set()
    written = 0
    for digest, size in todo:
        directory = f"blobs/{digest.algorithm}"
        if directory not in directories:
            directories.add(directory)
            if len(directories) == 1:
                await tar.directory("blobs")
            await tar.directory(directory)
        progress.item(str(digest))
        local = store.blobs.local_path(digest)
        if local is not None:
            await tar.local_file(blob_member(digest), size, local, progress.advance)
        else:
            chunks = await store.blobs.open(digest)
            try:
                await tar.stream(blob_member(digest), size, chunks, progress.advance)
            finally:
                await chunks.aclose()
        written += size
    await tar.close()
    return ExportResult(
        entries=len(selection.entries),
        blobs=len(todo),
        bytes=written,
        skipped=len(selection.blobs) - len(todo),
        left_out=selection.left_out,
    )


def covered_by(path: str) -> set[Digest]:
    """Every blob an earlier archive at `path` covers: its list when it is one of ours,
    else the blobs it carries (any OCI layout tar). Blocking: run it in a thread.

    Raises ArchiveInvalid when the file is not a readable tar, OSError when unreadable.
    """
    found: set[Digest] = set()
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name == LIST and member.isreg():
                    body = tar.extractfile(member)
                    assert body is not None
                    return set(parse_list(body.read()))
                digest = member_digest(name) if member.isreg() else None
                if digest is not None:
                    found.add(digest)
                forget_members(tar)
    except tarfile.TarError as exc:
        raise ArchiveInvalid(f"{path} is not a readable tar archive ({exc})") from None
    return found
