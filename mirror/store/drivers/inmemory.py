"""The in-memory driver: a tree of directories and files, for tests and throwaway registries.

It mirrors the file system driver's semantics, temp files included: a writer's bytes live
in a hidden temp file next to its target (left out of `list`) until `commit` moves the
node over the target, as a rename moves an inode. A
node's bytes are only ever changed in place by writers (of its temp file, or appending),
never by a replace or delete, which swap or drop the node; so an open reader keeps what
it opened, and follows a file still being written up to its current end, like a reader of
a file on disk.

Every method runs without awaiting between its reads and writes of the tree, so each one
is atomic with respect to the others on the event loop.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncGenerator

from anyio.lowlevel import checkpoint

from mirror.store.driver import (
    CHUNK_SIZE,
    DriverTraits,
    FileBusy,
    FileInfo,
    FileWriter,
    InvalidOffset,
    PathNotFound,
    StorageDriverError,
)
from mirror.store.drivers.base import (
    ChunkStream,
    is_inside,
    is_temp_name,
    split_path,
    temp_name,
)


class _File:
    __slots__ = ("appending", "data", "mtime")

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.mtime = time.time()
        self.appending = False  # an append writer is open on it (it cannot be moved)


class _Dir:
    __slots__ = ("children", "mtime")

    def __init__(self) -> None:
        self.children: dict[str, _File | _Dir] = {}
        self.mtime = time.time()


class InMemoryDriver:
    """A `StorageDriver` keeping everything in process memory (no `LocalPath`)."""

    name = "inmemory"
    traits = DriverTraits(append=True, directories=True)

    def __init__(self) -> None:
        self._root = _Dir()

    async def get_content(self, path: str) -> bytes:
        """The whole content of a file. Raises PathNotFound (also for directories)."""
        return bytes(self._file(path).data)

    async def put_content(self, path: str, content: bytes) -> None:
        """Replace the file at `path` with a new node holding `content`."""
        parent, name = split_path(path)
        directory = self._make_dirs(parent)
        if isinstance(directory.children.get(name), _Dir):
            raise StorageDriverError(f"{path} is a directory", path=path)
        directory.children[name] = _File(bytearray(content))

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Stream the file's current content from `offset`; see the module docstring."""
        data = self._file(path).data
        if offset < 0 or offset > len(data):
            raise InvalidOffset(f"offset {offset} outside {path} of size {len(data)}", path=path)
        return _MemoryChunks(data, offset)

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        """A temp-file writer, or with `append` one growing the target in place."""
        parent, name = split_path(path)
        directory = self._make_dirs(parent)
        existing = directory.children.get(name)
        if isinstance(existing, _Dir):
            raise StorageDriverError(f"{path} is a directory", path=path)
        if not append:
            tmp = temp_name(name)
            node = directory.children[tmp] = _File(bytearray())
            return _TempWriter(self._root, parent, node, tmp, name)
        if existing is None:
            node = directory.children[name] = _File(bytearray())
            return _AppendWriter(self._root, parent, node, name, created=True)
        if existing.appending:
            raise FileBusy(f"another writer is appending to {path}", path=path)
        return _AppendWriter(self._root, parent, existing, name, created=False)

    async def stat(self, path: str) -> FileInfo:
        """Size and mtime of a file, or `is_dir` (size 0). Raises PathNotFound."""
        node = self._find(path)
        if node is None:
            raise PathNotFound(f"{path} not found", path=path)
        if isinstance(node, _Dir):
            return FileInfo(path, 0, node.mtime, True)
        return FileInfo(path, len(node.data), node.mtime)

    async def list(self, path: str) -> builtins.list[str]:
        """Sorted names of the children of a directory, temp files left out."""
        node = self._find(path)
        if not isinstance(node, _Dir):
            raise PathNotFound(f"directory {path} not found", path=path)
        return sorted(name for name in node.children if not is_temp_name(name))

    async def move(self, src: str, dst: str) -> None:
        """Move the node at `src` to `dst`, replacing a file there. Raises PathNotFound."""
        node = self._find(src)
        if node is None:
            raise PathNotFound(f"{src} not found", path=src)
        if src == dst:
            return
        if is_inside(dst, src):
            raise StorageDriverError(f"cannot move {src} into itself", path=src)
        if isinstance(node, _File) and node.appending:
            raise FileBusy(f"cannot move {src}: a writer is appending to it", path=src)
        src_parent, src_name = split_path(src)
        dst_parent, dst_name = split_path(dst)
        directory = self._make_dirs(dst_parent)
        existing = directory.children.get(dst_name)
        if existing is not None and not _replaceable(node, existing):
            raise StorageDriverError(f"cannot move {src} over {dst}", path=src)
        source = self._find(src_parent)
        assert isinstance(source, _Dir)  # it holds `node`
        del source.children[src_name]
        directory.children[dst_name] = node

    async def delete(self, path: str) -> None:
        """Delete a file or a whole tree; deleting "/" empties the root. Raises PathNotFound."""
        if path == "/":
            self._root.children.clear()
            return
        parent, name = split_path(path)
        directory = self._find(parent)
        if not isinstance(directory, _Dir) or directory.children.pop(name, None) is None:
            raise PathNotFound(f"{path} not found", path=path)

    def _find(self, path: str) -> _File | _Dir | None:
        return _find(self._root, path)

    def _file(self, path: str) -> _File:
        node = self._find(path)
        if isinstance(node, _File):
            return node
        if node is None:
            raise PathNotFound(f"{path} not found", path=path)
        raise PathNotFound(f"{path} is a directory, not a file", path=path)

    def _make_dirs(self, path: str) -> _Dir:
        node = self._root
        if path == "/":
            return node
        for part in path[1:].split("/"):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Dir()
            elif isinstance(child, _File):
                raise StorageDriverError(f"a file is in the way of {path}", path=path)
            node = child
        return node


def _find(root: _Dir, path: str) -> _File | _Dir | None:
    node: _File | _Dir = root
    if path == "/":
        return node
    for part in path[1:].split("/"):
        if not isinstance(node, _Dir):
            return None
        child = node.children.get(part)
        if child is None:
            return None
        node = child
    return node


def _replaceable(node: _File | _Dir, existing: _File | _Dir) -> bool:
    # The rename(2) rules: a file replaces a file, a directory an empty directory.
    if isinstance(node, _File):
        return isinstance(existing, _File)
    return isinstance(existing, _Dir) and not existing.children


class _MemoryChunks(ChunkStream):
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytearray, offset: int) -> None:
        self._data: bytearray | None = data
        self._pos = offset

    async def __anext__(self) -> bytes:
        data = self._data
        if data is None:
            raise StopAsyncIteration
        # Yield to the loop once per chunk, as a real read would.
        try:
            await checkpoint()
        except BaseException:
            self._data = None
            raise
        pos = self._pos
        chunk = bytes(data[pos : pos + CHUNK_SIZE])
        if len(chunk) < CHUNK_SIZE:
            self._data = None
            if not chunk:
                raise StopAsyncIteration
        self._pos = pos + len(chunk)
        return chunk

    async def aclose(self) -> None:
        self._data = None


class _Writer:
    __slots__ = ("_buffer", "_closed", "_node", "_parent", "_root")

    def __init__(self, root: _Dir, parent: str, node: _File) -> None:
        self._root = root
        self._parent = parent
        self._node = node
        self._buffer = node.data
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes in the file so far."""
        return len(self._buffer)

    async def write(self, data: bytes) -> None:
        """Append `data`; raises StorageDriverError once committed or cancelled."""
        await checkpoint()
        self._check_open()
        self._buffer += data
        self._node.mtime = time.time()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageDriverError("the writer is already committed or cancelled")

    def _holder(self, name: str) -> _Dir | None:
        # Looked up by path: the directory may have been deleted (or replaced) meanwhile.
        directory = _find(self._root, self._parent)
        if isinstance(directory, _Dir) and directory.children.get(name) is self._node:
            return directory
        return None


class _TempWriter(_Writer):
    __slots__ = ("_name", "_tmp")

    def __init__(self, root: _Dir, parent: str, node: _File, tmp: str, name: str) -> None:
        super().__init__(root, parent, node)
        self._tmp = tmp
        self._name = name

    async def commit(self) -> None:
        """Move the temp file's node over the target."""
        await checkpoint()
        self._check_open()
        self._closed = True
        directory = self._holder(self._tmp)
        if directory is None:
            raise StorageDriverError("the temp file vanished before the commit")
        del directory.children[self._tmp]
        if isinstance(directory.children.get(self._name), _Dir):
            raise StorageDriverError("the target is a directory")
        self._node.mtime = time.time()
        directory.children[self._name] = self._node

    async def cancel(self) -> None:
        """Drop the temp file; idempotent, and a no-op after commit."""
        if not self._closed:
            self._closed = True
            directory = self._holder(self._tmp)
            if directory is not None:
                del directory.children[self._tmp]


class _AppendWriter(_Writer):
    __slots__ = ("_created", "_initial", "_name")

    def __init__(self, root: _Dir, parent: str, node: _File, name: str, *, created: bool) -> None:
        super().__init__(root, parent, node)
        self._name = name
        self._created = created
        self._initial = len(self._buffer)
        node.appending = True

    async def commit(self) -> None:
        """Nothing to publish: the bytes are already in place."""
        await checkpoint()
        self._check_open()
        self._closed = True
        self._node.appending = False

    async def cancel(self) -> None:
        """Truncate back to the size at open (remove a file created by the open)."""
        if self._closed:
            return
        self._closed = True
        self._node.appending = False
        del self._buffer[self._initial :]
        directory = self._holder(self._name) if self._created else None
        if directory is not None:
            del directory.children[self._name]

    def __del__(self) -> None:
        # As the kernel drops a dead writer's lock: a writer nobody closed frees its file.
        if not self._closed:
            self._node.appending = False
