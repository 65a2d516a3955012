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
            chunk = None
            if pos < limit:
                chunk = (
                    _from_memory(fill, pos, limit)
                    or await partial.read(pos, limit)
                    or await stored.read(pos)
                )
            if not chunk:
                await fill.changed(poll)
                continue
            pos += len(chunk)
            yield chunk
    finally:
        await partial.aclose()
        await stored.aclose()


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

    async def read(self, pos: int, limit: int) -> bytes | None:
        fill = self._fill
        if fill.state is not FillState.STORED:
            limit = min(limit, fill.flushed)  # beyond: in memory no longer, not yet written
        if pos >= limit:
            return None
        reader = await self._open()
        if reader is None:
            return None
        try:
            chunk = await reader.read(pos, min(CHUNK_SIZE, limit - pos))
        except PartialGone:  # not kept (any more): the stored blob will have it
            await self._drop()
            return None
        if not chunk:
            raise OSError(f"partial blob of {fill.digest} ended at {pos}")
        return chunk

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
