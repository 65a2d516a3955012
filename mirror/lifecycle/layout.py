"""The store layout as the collector walks it: bounded, concurrent driver calls.

Every driver call goes through one gate (a semaphore), so a collection keeps at most
`concurrency` calls in flight however its work is split into tasks; `map_bounded` keeps
the number of waiting coroutines bounded too. On a local driver, `listdirs` and
`delete_many` go in batches through `localbatch` instead of one call per path. Walks
are streamed level by level or one directory at a time; nothing here lists a whole
store into memory.

A missing path is an answer (None, False or empty), never an error: the store may change
under a running collection and half-written repositories are normal. Other driver
errors propagate (`StorageDriverError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import TypeVar

from mirror.digests import Digest
from mirror.errors import DigestInvalid
from mirror.lifecycle.digestset import key_from
from mirror.lifecycle.localbatch import LocalBatch
from mirror.store import paths
from mirror.store.driver import (
    FileInfo,
    LocalPath,
    PathNotFound,
    StorageDriver,
    StorageDriverError,
)

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 256  # directories listed at once by the repository walk
BATCH_CALL = 128  # paths per batched call on a local driver
WORKERS = 16  # coroutines per map_bounded call
REPOSITORY_MARKERS = frozenset({"_manifests", "_layers", "_uploads"})


async def map_bounded(fn: Callable[[T], Awaitable[R]], items: Sequence[T]) -> list[R]:
    """`[await fn(item) for item in items]`, with up to WORKERS calls at a time.

    A few worker coroutines take the items in turn, rather than one task per item:
    calls that complete without waiting (a local driver's stat or small read) then cost
    no scheduling at all, and calls that wait (a thread hop, a network round trip)
    still overlap. When one call raises, the other workers are cancelled before the
    exception propagates, so nothing goes on working (or deleting) behind the caller.
    """
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    if len(items) <= 1:
        return [await fn(item) for item in items]
    position = iter(range(len(items)))

    async def worker() -> None:
        for index in position:
            results[index] = await fn(items[index])

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(WORKERS, len(items)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results


class BoundedTasks:
    """Background jobs, at most `limit` running at once, as an async context manager.

    The first failure stops `submit` from starting more (it raises that failure). On
    leaving the block every job under way is waited for (a batch of deletions finishes
    rather than stopping halfway), then the first failure is raised; only when the
    block itself is cancelled or interrupted are the jobs cancelled.
    """

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def __aenter__(self) -> BoundedTasks:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None and not isinstance(exc, Exception):
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            return
        while self._tasks:
            await asyncio.gather(*self._tasks)
        if exc is None and self._failure is not None:
            raise self._failure

    async def submit(self, job: Coroutine[object, object, None]) -> None:
        """Start `job` once a slot is free (raises an earlier job's failure instead)."""
        await self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            job.close()
            raise self._failure
        task = asyncio.ensure_future(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Coroutine[object, object, None]) -> None:
        try:
            await job
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
        finally:
            self._slots.release()


class Layout:
    """Gated access to one driver, with the walks the collector needs."""

    def __init__(self, driver: StorageDriver, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.driver = driver
        self._gate = asyncio.Semaphore(concurrency)
        self._batch = LocalBatch(driver) if isinstance(driver, LocalPath) else None

    async def listdir(self, path: str) -> list[str]:
        """Child names of a directory; empty when it does not exist."""
        async with self._gate:
            try:
                return await self.driver.list(path)
            except PathNotFound:
                return []

    async def listdirs(self, paths: Sequence[str]) -> list[list[str]]:
        """`listdir` of each path, in order: batched on a local driver (`localbatch`)."""
        if self._batch is None:
            return await map_bounded(self.listdir, paths)
        found: list[list[str]] = []
        for start in range(0, len(paths), BATCH_CALL):
            async with self._gate:
                found += await self._batch.listdirs(paths[start : start + BATCH_CALL])
        return found

    async def delete_many(self, paths: Sequence[str]) -> list[bool | StorageDriverError]:
        """`delete` of each path (in order when batched, on a local driver, else
        concurrently): True, False when already gone, or the error that kept it; one
        failure does not stop the others."""
        if self._batch is None:
            return await map_bounded(self._delete_one, paths)
        done: list[bool | StorageDriverError] = []
        for start in range(0, len(paths), BATCH_CALL):
            async with self._gate:
                done += await self._batch.delete(paths[start : start + BATCH_CALL])
        return done

    async def _delete_one(self, path: str) -> bool | StorageDriverError:
        try:
            return await self.delete(path)
        except StorageDriverError as exc:
            return exc

    async def stat(self, path: str) -> FileInfo | None:
        async with self._gate:
            try:
                return await self.driver.stat(path)
            except PathNotFound:
                return None

    async def get(self, path: str) -> bytes | None:
        async with self._gate:
            try:
                return await self.driver.get_content(path)
            except PathNotFound:
                return None

    async def delete(self, path: str) -> bool:
        """Delete a file or tree; False when it was already gone."""
        async with self._gate:
            try:
                await self.driver.delete(path)
            except PathNotFound:
                return False
            return True

    async def read_link(self, path: str) -> Digest | None:
        """The digest in a link file; None when missing or not a digest."""
        content = await self.get(path)
        if content is None:
            return None
        try:
            return Digest.parse(content.decode("ascii", "replace").strip())
        except DigestInvalid:
            return None

    async def digests_under(self, base: str) -> list[tuple[bytes, Digest]]:
        """``(key, digest)`` of each ``base/<algorithm>/<hex>`` directory (other names
        are skipped)."""
        return (await self.digests_under_many([base]))[0]

    async def digests_under_many(self, bases: Sequence[str]) -> list[list[tuple[bytes, Digest]]]:
        """`digests_under` of each base, in two batched rounds of listings."""
        return await self.digests_in(bases, await self.listdirs(bases))

    async def digests_in(
        self, bases: Sequence[str], algorithms: Sequence[list[str]]
    ) -> list[list[tuple[bytes, Digest]]]:
        """Like `digests_under_many`, given the listings of the bases themselves."""
        pairs = [(i, a) for i, names in enumerate(algorithms) for a in names]
        listed = await self.listdirs([f"{bases[i]}/{a}" for i, a in pairs])
        found: list[list[tuple[bytes, Digest]]] = [[] for _ in bases]
        for (i, algorithm), names in zip(pairs, listed, strict=True):
            for hex_ in names:
                key = key_from(algorithm, hex_)
                if key is not None:
                    found[i].append((key, Digest(algorithm, hex_)))
        return found

    async def repositories(self) -> AsyncIterator[tuple[str, list[str]]]:
        """``(name, child names)`` of every repository directory, breadth first.

        A repository is a directory with `_manifests`, `_layers` or `_uploads`; names
        nest (``a/b`` and ``a/b/c`` can both be repositories). Each level of the tree is
        listed concurrently; only one level's directory names are held at a time.
        """
        level: list[str] = [""]
        while level:
            next_level: list[str] = []
            for start in range(0, len(level), CHUNK):
                prefixes = level[start : start + CHUNK]
                listed = await self.listdirs(
                    [f"{paths.REPOSITORIES}/{p}" if p else paths.REPOSITORIES for p in prefixes]
                )
                for prefix, names in zip(prefixes, listed, strict=True):
                    if prefix and REPOSITORY_MARKERS.intersection(names):
                        yield prefix, names
                    next_level += [
                        f"{prefix}/{name}" if prefix else name
                        for name in names
                        if not name.startswith("_")
                    ]
            level = next_level

    async def blob_directories(self) -> AsyncIterator[tuple[str, list[str]]]:
        """``(algorithm, hex names)`` of each ``blobs/<algorithm>/<xx>`` directory."""
        for algorithm in await self.listdir(paths.BLOBS):
            base = f"{paths.BLOBS}/{algorithm}"
            prefixes = await self.listdir(base)
            for start in range(0, len(prefixes), 16):
                chunk = prefixes[start : start + 16]
                for listed in await self.listdirs([f"{base}/{prefix}" for prefix in chunk]):
                    yield algorithm, listed
