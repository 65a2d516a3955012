"""Streaming reads and atomic writes of one object, for the object-store drivers.

`ObjectChunks` re-cuts obstore's response stream into chunks of exactly CHUNK_SIZE (the
last one shorter), pulling from the network only as fast as its consumer reads, so memory
stays at about two chunks (obstore's piece and the chunk cut from it) whatever the
object's size.

`ObjectWriter` buffers up to one part in memory. Content that fits is sent with a single
PUT at `commit`; beyond that it opens obstore's buffered multipart writer (an S3 multipart
upload, an Azure block list) and streams into it with at most `part_concurrency` parts in
flight. Either way the object appears only when `commit` completes the upload: nobody ever
sees a partial object. `cancel` aborts the upload (S3 AbortMultipartUpload; Azure drops
uncommitted blocks by itself). An upload abandoned without `cancel` (a crash) leaves
invisible parts behind; an S3 lifecycle rule (AbortIncompleteMultipartUpload) removes them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import obstore
from anyio import CancelScope, move_on_after
from anyio.lowlevel import checkpoint

from mirror.store.driver import CHUNK_SIZE, StorageDriverError
from mirror.store.drivers.base import ChunkStream
from mirror.store.drivers.objerrors import translate, translated

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, Attributes, BytesStream
    from obstore.store import ObjectStore

log = logging.getLogger(__name__)

# Python<->Rust hops cost tens of microseconds: hand obstore runs of at least this much.
_HANDOFF = CHUNK_SIZE
_ABORT_TIMEOUT = 30.0


class ObjectChunks(ChunkStream):
    """Chunks of one GET response; driver errors on failure; closes on error and cancel.

    obstore hands over pieces of at least CHUNK_SIZE (its buffer, readable in place); each
    chunk is copied out of them once, by slicing (a chunk straddling two pieces joins its
    two slices), rather than gathered in a buffer of our own first.
    """

    __slots__ = ("_driver", "_offset", "_path", "_piece", "_stream")

    def __init__(self, stream: BytesStream | None, driver: str, path: str) -> None:
        self._stream = stream
        self._piece: memoryview | None = None  # the unread rest is [_offset:]
        self._offset = 0
        self._driver = driver
        self._path = path

    async def __anext__(self) -> bytes:
        # A checkpoint per chunk, so a cancelled caller stops here even when the next chunk
        # is already buffered (as on any driver).
        slices: list[memoryview] = []
        wanted = CHUNK_SIZE
        try:
            await checkpoint()
            while wanted:
                piece = self._piece
                if piece is None:
                    if self._stream is None:
                        break
                    try:
                        piece = memoryview(await self._stream.__anext__())
                    except StopAsyncIteration:
                        self._stream = None
                        break
                    self._piece, self._offset = piece, 0
                start = self._offset
                end = min(start + wanted, len(piece))
                if end > start:
                    slices.append(piece[start:end])
                    wanted -= end - start
                if end == len(piece):
                    self._piece = None
                else:
                    self._offset = end
        except BaseException as exc:
            self._close()
            if isinstance(exc, Exception):
                raise translate(exc, self._driver, "read", self._path) from exc
            raise
        if not slices:
            raise StopAsyncIteration
        return bytes(slices[0]) if len(slices) == 1 else b"".join(slices)

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        # Dropping obstore's stream closes its connection.
        self._stream = None
        self._piece = None


class ObjectWriter:
    """A `FileWriter` of one object; see the module docstring."""

    __slots__ = (
        "_attributes",
        "_broken",
        "_concurrency",
        "_driver",
        "_key",
        "_part_size",
        "_path",
        "_pending",
        "_pending_size",
        "_size",
        "_state",
        "_store",
        "_upload",
    )

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        driver: str,
        path: str,
        part_size: int,
        concurrency: int,
        attributes: Attributes | None,
    ) -> None:
        self._store = store
        self._key = key
        self._driver = driver
        self._path = path
        self._part_size = part_size
        self._concurrency = concurrency
        self._attributes = attributes
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._size = 0
        self._upload: AsyncWritableFile | None = None
        self._state = "open"
        self._broken = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    async def write(self, data: bytes) -> None:
        """Buffer or upload `data`; StorageDriverError once closed or after a failure."""
        self._check_open()
        if not data:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        self._size += len(data)
        if self._upload is None and self._pending_size <= self._part_size:
            return  # may still go as one PUT
        if self._pending_size >= _HANDOFF:
            await self._hand_off()

    async def flush(self) -> None:
        """Nothing to do: uncommitted bytes of an object are readable by nobody."""
        self._check_open()

    async def commit(self) -> None:
        """Make the object visible with the whole content, atomically."""
        self._check_open()
        self._state = "committing"
        try:
            if self._upload is None:
                content = b"".join(self._pending)
                self._pending.clear()
                with translated(self._driver, "commit", self._path):
                    await obstore.put_async(
                        self._store,
                        self._key,
                        content,
                        attributes=self._attributes,
                        use_multipart=False,
                    )
            else:
                await self._hand_off()
                upload, self._upload = self._upload, None
                with translated(self._driver, "commit", self._path):
                    await upload.close()
        except BaseException:
            # A failed completion cannot be aborted through obstore (it has let go of the
            # upload); the parts stay invisible until a lifecycle rule removes them.
            self._state = "failed"
            raise
        self._state = "committed"

    async def cancel(self) -> None:
        """Abort the upload; idempotent, a no-op after commit, never raises for the store.

        Runs shielded (bounded by a timeout), so it also works inside a cancelled scope.
        """
        if self._state != "open":
            return
        self._state = "cancelled"
        self._pending.clear()
        upload, self._upload = self._upload, None
        if upload is None:
            return
        with CancelScope(shield=True), move_on_after(_ABORT_TIMEOUT):
            try:
                # Leaving the context with an exception is obstore's way to abort.
                await upload.__aexit__(_Aborted, _Aborted(), None)
            except Exception as exc:
                log.warning(
                    "%s: aborting the upload of %s failed: %s", self._driver, self._path, exc
                )

    async def _hand_off(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        # Unknown how much reached the store if this fails or is cancelled.
        self._broken = True
        with translated(self._driver, "write", self._path):
            if self._upload is None:
                self._upload = obstore.open_writer_async(
                    self._store,
                    self._key,
                    attributes=self._attributes,
                    buffer_size=self._part_size,
                    max_concurrency=self._concurrency,
                )
            await self._upload.write(data)
        self._broken = False

    def _check_open(self) -> None:
        if self._state != "open":
            raise StorageDriverError(
                "the writer is already committed or cancelled", path=self._path, driver=self._driver
            )
        if self._broken:
            raise StorageDriverError(
                "an earlier write failed; the writer can only be cancelled",
                path=self._path,
                driver=self._driver,
            )


class _Aborted(Exception):
    """Passed to obstore's writer ``__aexit__`` to make it abort rather than complete."""
