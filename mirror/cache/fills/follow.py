"""Reading a blob while it is being downloaded: follow the download to its end.

Bytes can come from three places, one small source each: the newest batches in memory
(`Fill.remember`: readers that keep up take them before they are even written, without a
copy), the partial blob in the store (`BlobStore.open_partial`; on a local file system
one descriptor that also reads on after the commit renames the file), and the stored blob
once committed. A reader takes each next piece from the first source that has it, and
waits for the download when none has.

The last byte a reader was asked for - of the blob, or of a range - only goes out once
the download is verified, so a corrupt or truncated download never completes a response
(the reader raises instead, and the server drops the connection). If the download
restarts (another process took over), the reader carries on from where it is with the
new download when the old one was abandoned (its holder died: the bytes already sent
are the same content by digest, and the last byte still waits for the new download's
verification), and gives up when its holder ended it (it may have found bytes wrong).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from mirror.cache.fills.fill import Fill, FillState
from mirror.store.blobs import BlobStore
from mirror.store.ingest.staging import CHUNK_SIZE, PartialGone, PartialReader

_COMPLETE = (FillState.VERIFIED, FillState.STORED)
# The partial is read in pieces of this size (up to CHUNK_SIZE per read): what the proxy
# sends in one body message (`proxy.blobresponse.SEND_PIECE`), so they go out uncut,
# and below the allocator's mmap threshold (`mirror.memory`), so their buffers are
# reused. 8 clients of one uncached 256 MiB layer (bench workload 5, side by side, 4
# rounds): server CPU 3.33 s (2.56-4.02) with 1 MiB reads cut into 128 KiB copies, 2.50 s
# (2.26-3.05) with 128 KiB pieces; the worker threads' system time halved.
READ_PIECE = 128 * 1024


async def follow(
    fill: Fill, offset: int, end: int, blobs: BlobStore, poll: float
) -> AsyncGenerator[bytes, None]:
    """Bytes `offset`..`end` of `fill`'s blob as they become available."""
    partial = _Partial(fill, blobs)
    stored = _Stored(fill, blobs)
    attempt = fill.attempt
    pos = offset
    try:
        while pos < end:
            if fill.state is FillState.FAILED:
                raise OSError(f"download of {fill.digest} failed: {fill.error}")
            if fill.attempt != attempt:
                if pos > offset and not fill.continues(attempt):
                    raise OSError(f"download of {fill.digest} restarted; the reader gives up")
                attempt = fill.attempt
            # Hold back the last byte until the download is verified.
            limit = end if fill.state in _COMPLETE else min(fill.available, end - 1)
            chunks: list[bytes] | None = None
            if pos < limit:
                memory = _from_memory(fill, pos, limit)
                chunks = (
                    [memory]
                    if memory
                    else await partial.read(pos, limit) or _one(await stored.read(pos))
                )
            if not chunks:
                await fill.changed(poll)
                continue
            for chunk in chunks:
                pos += len(chunk)
                yield chunk
    finally:
        await partial.aclose()
        await stored.aclose()


def _one(chunk: bytes | None) -> list[bytes] | None:
    return [chunk] if chunk else None


def _from_memory(fill: Fill, pos: int, limit: int) -> bytes | None:
    """Bytes from `pos` (up to `limit`) out of the batch in memory that holds `pos`."""
    recent = fill.recent_at(pos)
    if recent is None:
        return None
    start, data = recent
    end = min(start + len(data), limit)
    return data if pos == start and end == start + len(data) else data[pos - start : end - start]


class _Partial:
    """The partial blob of the fill's current download, opened on first use."""

    def __init__(self, fill: Fill, blobs: BlobStore) -> None:
        self._fill = fill
        self._blobs = blobs
        self._reader: PartialReader | None = None
        self._locator: str | None = None  # of the partial opened (or found gone)

    async def read(self, pos: int, limit: int) -> list[bytes] | None:
        fill = self._fill
        if fill.state is not FillState.STORED:
            limit = min(limit, fill.flushed)  # beyond: in memory no longer, not yet written
        if pos >= limit:
            return None
        reader = await self._open()
        if reader is None:
            return None
        try:
            pieces = await reader.read(pos, min(CHUNK_SIZE, limit - pos), READ_PIECE)
        except PartialGone:  # not kept (any more): the stored blob will have it
            await self._drop()
            return None
        if not pieces:
            raise OSError(f"partial blob of {fill.digest} ended at {pos}")
        return pieces

    async def _open(self) -> PartialReader | None:
        fill = self._fill
        if self._locator != fill.locator:
            await self.aclose()
            # Once stored, a reader that has no partial open reads the stored blob.
            if fill.locator is None or fill.state is FillState.STORED:
                return None
            self._locator = fill.locator
            try:
                self._reader = await self._blobs.open_partial(fill.digest, fill.locator)
            except PartialGone:  # committed or failed: the fill's state will say
                pass
        return self._reader

    async def _drop(self) -> None:
        """Stop reading this partial (the locator stays, so it is not opened again)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.aclose()

    async def aclose(self) -> None:
        await self._drop()
        self._locator = None


class _Stored:
    """The committed blob, read on from where the reader is."""

    def __init__(self, fill: Fill, blobs: BlobStore) -> None:
        self._fill = fill
        self._blobs = blobs
        self._stream: AsyncGenerator[bytes, None] | None = None

    async def read(self, pos: int) -> bytes | None:
        if self._fill.state is not FillState.STORED:
            return None
        if self._stream is None:
            self._stream = await self._blobs.open(self._fill.digest, pos)
        chunk = await anext(self._stream, None)
        if chunk is None:
            raise OSError(f"stored blob {self._fill.digest} ended at {pos}")
        return chunk

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()
