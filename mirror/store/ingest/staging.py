"""Partial blobs: the bytes of a blob being ingested, readable before it is committed.

The download engine writes a blob it is fetching into a `StagedWrite` and lets readers -
in this process or, through the `locator` the write hands out, in others - read what has
been written so far with a `PartialReader`. Nothing above the store sees where a partial
lives: a locator is an opaque string, announced by the downloading process through the
metadata store and handed back to `Staging.open` by its followers.

Implementations (chosen per driver by `staging_for`):

- `FileStaging` (drivers with local files): the partial is the driver's own hidden temp
  file next to the blob, renamed over it at the commit; processes on the host share it.
- `SpoolStaging` (object stores, given a local directory): writes go through the driver's
  writer and into a spool file that every process of the host reads, whatever the size;
  given `Peers` (`cluster.advertise`), replicas on other hosts read it over HTTP too.
- `MemoryStaging` (any other driver, or without a directory): writes go through the
  driver's writer and are kept in memory, up to a bound, for the readers of this process.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from mirror.store.driver import CHUNK_SIZE as _CHUNK_SIZE
from mirror.store.driver import LocalPath, StorageDriver

if TYPE_CHECKING:
    from mirror.store.ingest.remote import Peers

# What writers buffer and readers read at once: the batch size for writers of partials.
CHUNK_SIZE: Final = _CHUNK_SIZE


class PartialGone(Exception):
    """No partial blob (any more) at a locator: committed, cancelled, or never known here."""


class PartialState(enum.Enum):
    WRITING = "writing"  # its writer may add bytes
    COMMITTED = "committed"  # the blob is at its path; readers of the partial read on
    GONE = "gone"  # cancelled (or its writer died): no more bytes will come


@dataclass(frozen=True, slots=True)
class PartialProgress:
    available: int  # bytes a reader can read now
    state: PartialState


class StagedWrite(Protocol):
    """One write of a partial blob to its path. Used by one task at a time."""

    @property
    def locator(self) -> str:
        """Where readers find the partial (`Staging.open`), in this process or another."""
        ...

    @property
    def size(self) -> int:
        """Bytes written so far (some may not be readable before `flush`)."""
        ...

    async def reserve(self, size: int) -> None:
        """Set aside room for `size` bytes in all where the storage can, so that the
        write cannot run out of it half way (nor two writes that fit only one at a time
        both). Raises Unavailable when there is not enough; a no-op elsewhere."""
        ...

    async def write(self, data: bytes) -> None:
        """Append `data`; raises StorageDriverError once committed or cancelled."""
        ...

    async def flush(self) -> None:
        """Make every byte written so far readable by partial readers (not durable)."""
        ...

    async def commit(self) -> None:
        """Publish the bytes at the path durably and atomically (nobody ever sees a
        partial object there). Open partial readers read on to the end."""
        ...

    async def cancel(self) -> None:
        """Drop the partial; idempotent, and a no-op after `commit`."""
        ...


class PartialReader(Protocol):
    """A reader of one partial blob; the caller must `aclose` it."""

    async def read(self, offset: int, size: int, piece: int) -> list[bytes]:
        """Up to `size` bytes at `offset`, as consecutive pieces of at most `piece` bytes
        got in one read of the staging (pieces the size the server sends need no copy to
        be cut, and buffers that small are reused by the allocator rather than mapped
        and unmapped): no pieces when no bytes are readable there yet.

        May return bytes of a partial that was cancelled meanwhile: whoever reads must
        learn the outcome of the write (from `progress`, or from the writer) before it
        treats the bytes as a blob's. Raises PartialGone when the staging no longer has
        the bytes to give (`MemoryStaging` keeps only so much); then wait for the commit.
        """
        ...

    async def progress(self) -> PartialProgress:
        """How many bytes are readable now, and whether the write goes on. Raises
        PartialGone when the partial can no longer be reached (another replica's that
        went away): then wait for the commit."""
        ...

    async def aclose(self) -> None:
        """Release the reader; idempotent."""
        ...


def cut(data: bytes, piece: int) -> list[bytes]:
    """`data` as `PartialReader.read` returns it: pieces of at most `piece` bytes."""
    if len(data) <= piece:
        return [data] if data else []
    return [data[start : start + piece] for start in range(0, len(data), piece)]


class Staging(Protocol):
    """Where a store keeps partial blobs."""

    async def create(self, path: str) -> StagedWrite:
        """Start writing a partial that `commit` publishes at the driver path `path`."""
        ...

    async def open(self, path: str, locator: str) -> PartialReader:
        """Open the partial at `locator` of the object at `path`, from any process.

        Raises PartialGone when it is not (or no longer) there, or `locator` is not one
        this staging hands out for `path`.
        """
        ...

    async def discard(self, path: str, locator: str) -> bool:
        """Remove the partial at `locator` of `path` if its writer is known to be gone
        (its process died); True when it was removed. A partial whose writer may live
        is never touched."""
        ...


def staging_for(
    driver: StorageDriver, spool_directory: str | None = None, peers: Peers | None = None
) -> Staging:
    """The staging that fits `driver` (see the module docstring); `peers` serve and read
    the spool files of other replicas."""
    if isinstance(driver, LocalPath):
        from mirror.store.ingest.files import FileStaging

        return FileStaging(driver)
    if spool_directory is not None:
        from mirror.store.ingest.spool import SpoolStaging

        return SpoolStaging(driver, spool_directory, peers)
    from mirror.store.ingest.memory import MemoryStaging

    return MemoryStaging(driver)
