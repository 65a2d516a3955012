"""Reading a blob while it is being downloaded: follow the growing file to its end.

A reader sends what has been flushed, waits for more, and goes on; the last byte only
once the download is verified, so a corrupt or truncated download is never handed out as
complete (the reader raises instead, and the server drops the connection). If the
download restarts elsewhere (its holder died, another process took over), bytes already
sent came from an unverified file, so the reader gives up rather than splice.

Readers that keep up take the newest batches from memory (`Fill.remember`); others read
the file. On a local file system the reader keeps one file descriptor on the partial
file; the commit renames that file into place, so the same descriptor reads on to the
end. Other drivers reopen the partial path, and read the stored blob once committed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator

from anyio import to_thread

from mirror.cache.fills.fill import Fill, FillState
from mirror.store.blobs import BlobStore
from mirror.store.driver import CHUNK_SIZE, LocalPath, PathNotFound


async def follow(
    fill: Fill, offset: int, size: int, blobs: BlobStore, poll: float
) -> AsyncGenerator[bytes, None]:
    """Bytes `offset`..`size` of `fill`'s blob as they become available."""
    driver = blobs.driver
    source = fill.locator
    local = driver.local_path(source) if source and isinstance(driver, LocalPath) else None
    fd: int | None = None
    pos = offset
    try:
        while pos < size:
            if fill.state is FillState.FAILED:
                raise OSError(f"download of {fill.digest} failed: {fill.error}")
            if fill.locator != source:
                raise OSError(f"download of {fill.digest} restarted; the reader gives up")
            stored = fill.state is FillState.STORED or (
                fill.remote and await _committed(fill, blobs)
            )
            if stored and fd is None:
                async for chunk in _stored(blobs, fill, pos):
                    yield chunk
                return
            # Hold back the last byte until the download is verified.
            limit = (
                size
                if stored or fill.state is FillState.VERIFIED
                else min(fill.available, size - 1)
            )
            if pos >= limit or source is None:
                await fill.changed(poll)
                continue
            piece = _from_memory(fill, pos, limit)
            if piece is not None:
                pos += len(piece)
                yield piece
                continue
            limit = min(limit, fill.flushed) if not stored else limit
            if pos >= limit:  # the next bytes are in memory no longer, not yet on disk
                await fill.changed(poll)
                continue
            if local is not None:
                if fd is None:
                    try:
                        fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:  # committed or failed: the state will say
                        local = None
                        continue
                chunk = await to_thread.run_sync(os.pread, fd, min(CHUNK_SIZE, limit - pos), pos)
                if not chunk:
                    raise OSError(f"partial file of {fill.digest} ended at {pos}")
                pos += len(chunk)
                yield chunk
                continue
            async for chunk in _partial(blobs, source, pos, limit):
                pos += len(chunk)
                yield chunk
            if pos < limit:  # the partial file is gone: committed or failed
                await fill.changed(poll)
    finally:
        if fd is not None:
            os.close(fd)


def _from_memory(fill: Fill, pos: int, limit: int) -> bytes | None:
    """Bytes from `pos` (up to `limit`) out of the batch in memory that holds `pos`."""
    recent = fill.recent_at(pos)
    if recent is None:
        return None
    start, data = recent
    end = min(start + len(data), limit)
    return data if pos == start and end == start + len(data) else data[pos - start : end - start]


async def _stored(blobs: BlobStore, fill: Fill, pos: int) -> AsyncGenerator[bytes, None]:
    stream = await blobs.open(fill.digest, pos)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


async def _partial(
    blobs: BlobStore, path: str, pos: int, limit: int
) -> AsyncGenerator[bytes, None]:
    """Bytes `pos`..`limit` of the partial file; ends early when it disappears."""
    try:
        stream = await blobs.driver.reader(path, pos)
    except PathNotFound:
        return
    try:
        async for chunk in stream:
            part = chunk[: limit - pos] if pos + len(chunk) > limit else chunk
            pos += len(part)
            yield part
            if pos >= limit:
                break
    finally:
        await stream.aclose()


async def _committed(fill: Fill, blobs: BlobStore) -> bool:
    """Whether another process's download of `fill` is stored (its partial is gone)."""
    path = fill.locator
    if path is None:
        return await blobs.exists(fill.digest)
    try:
        await blobs.driver.stat(path)
    except PathNotFound:
        return await blobs.exists(fill.digest)
    return False
