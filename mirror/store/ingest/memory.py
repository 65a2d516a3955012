"""Partial blobs kept in process memory, for drivers whose uncommitted writes nobody can read.

Writes go through the driver's own writer (so the commit is the driver's atomic one) and
each written piece is also kept, without a copy, for the readers of this process - up to
`keep` bytes per write: a larger blob stops being kept (its readers get PartialGone and
wait for the commit), so a download to an object store never holds a whole blob in
memory. The locator names the write within this process only: elsewhere it is unknown
(PartialGone), and followers there wait for the commit instead of streaming.
"""

from __future__ import annotations

import bisect
import secrets

from anyio.lowlevel import checkpoint

from mirror.store.driver import FileWriter, StorageDriver, StorageDriverError
from mirror.store.ingest.staging import PartialGone, PartialProgress, PartialState, cut

KEEP = 64 * 1024 * 1024


class MemoryStaging:
    """`Staging` in memory (see the module docstring)."""

    def __init__(self, driver: StorageDriver, *, keep: int = KEEP) -> None:
        self._driver = driver
        self._keep = keep
        self._live: dict[str, _Pieces] = {}

    async def create(self, path: str) -> _MemoryWrite:
        writer = await self._driver.writer(path)
        locator = f"memory:{secrets.token_hex(16)}"
        pieces = self._live[locator] = _Pieces(path, self._keep)
        return _MemoryWrite(self._live, locator, writer, pieces)

    async def open(self, path: str, locator: str) -> _MemoryReader:
        pieces = self._live.get(locator)
        if pieces is None or pieces.path != path or pieces.dropped:
            raise PartialGone(f"no partial {locator[:200]!r} of {path} in this process")
        return _MemoryReader(pieces)

    async def discard(self, path: str, locator: str) -> bool:
        """Nothing to do: a writer in this process always ends its partial itself."""
        return False


class _Pieces:
    """The pieces of one write, each with its offset; `state` says how the write ended.
    Beyond `keep` bytes the pieces are dropped (`dropped`), and reads raise PartialGone."""

    __slots__ = ("data", "dropped", "keep", "path", "size", "starts", "state")

    def __init__(self, path: str, keep: int) -> None:
        self.path = path
        self.keep = keep
        self.data: list[bytes] = []
        self.starts: list[int] = []
        self.size = 0
        self.dropped = False
        self.state = PartialState.WRITING

    def add(self, piece: bytes) -> None:
        if not self.dropped and self.size + len(piece) > self.keep:
            self.dropped = True
            self.clear()
        if not self.dropped:
            self.starts.append(self.size)
            self.data.append(piece)
        self.size += len(piece)

    def clear(self) -> None:
        self.data.clear()
        self.starts.clear()

    def read(self, offset: int, size: int) -> bytes:
        if self.dropped:
            raise PartialGone(f"the partial of {self.path} is too large to keep in memory")
        index = bisect.bisect_right(self.starts, offset) - 1
        if index < 0 or offset >= self.size:
            return b""
        start, piece = self.starts[index], self.data[index]
        if offset == start and len(piece) <= size:
            return piece
        return piece[offset - start : offset - start + size]


class _MemoryWrite:
    __slots__ = ("_live", "_locator", "_pieces", "_writer")

    def __init__(
        self, live: dict[str, _Pieces], locator: str, writer: FileWriter, pieces: _Pieces
    ) -> None:
        self._live = live
        self._locator = locator
        self._writer = writer
        self._pieces = pieces

    @property
    def locator(self) -> str:
        return self._locator

    @property
    def size(self) -> int:
        return self._pieces.size

    async def reserve(self, size: int) -> None:
        """Nothing to reserve: memory is taken as the bytes come."""

    async def write(self, data: bytes) -> None:
        await self._writer.write(data)
        self._pieces.add(bytes(data))  # no copy for bytes, the usual case

    async def flush(self) -> None:
        """Nothing to do: readers see every write at once."""
        await checkpoint()
        if self._pieces.state is not PartialState.WRITING:
            raise StorageDriverError("the writer is already committed or cancelled")

    async def commit(self) -> None:
        await self._writer.commit()
        # Readers that have the pieces read on; new ones read the committed object.
        self._pieces.state = PartialState.COMMITTED
        self._live.pop(self._locator, None)

    async def cancel(self) -> None:
        if self._pieces.state is PartialState.WRITING:
            self._pieces.state = PartialState.GONE
            self._pieces.clear()
        self._live.pop(self._locator, None)
        await self._writer.cancel()


class _MemoryReader:
    __slots__ = ("_pieces",)

    def __init__(self, pieces: _Pieces) -> None:
        self._pieces: _Pieces | None = pieces

    async def read(self, offset: int, size: int, piece: int) -> list[bytes]:
        await checkpoint()  # a read yields to the loop, as one from a file would
        if self._pieces is None:
            raise StorageDriverError("the partial reader is closed")
        return cut(self._pieces.read(offset, size), piece)

    async def progress(self) -> PartialProgress:
        if self._pieces is None:
            raise StorageDriverError("the partial reader is closed")
        return PartialProgress(self._pieces.size, self._pieces.state)

    async def aclose(self) -> None:
        self._pieces = None
