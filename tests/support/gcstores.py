"""Crafted stores for garbage-collection tests, built through the real `Store` in process.

Images are small OCI manifests over random blobs; `StoredImage` remembers what each one
references so tests can check exactly what a collection kept. `files_of` lists every
file under the layout, so a dry run can be proven to change nothing.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from mirror.digests import Digest
from mirror.store import paths
from mirror.store.driver import FileInfo, FileWriter, PathNotFound, StorageDriver
from mirror.store.store import Store
from mirror.types import Reference
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, manifest_bytes, random_bytes


@dataclass(frozen=True)
class StoredImage:
    repository: str
    digest: Digest
    raw: bytes
    blobs: tuple[Digest, ...]  # config and layers
    children: tuple[StoredImage, ...] = field(default=())

    @property
    def all_blobs(self) -> set[Digest]:
        """Every blob this image needs, its own manifest and its children's included."""
        found = {self.digest, *self.blobs}
        for child in self.children:
            found |= child.all_blobs
        return found


async def add_blob(store: Store, repository: str, data: bytes) -> Digest:
    """Store `data` and link it into `repository` (what an upload commit does)."""
    info = await store.blobs.put(data)
    await store.repository(repository).blobs.link(info.digest)
    return info.digest


async def add_image(
    store: Store,
    repository: str,
    tag: str | None,
    *,
    seed: int,
    layers: int = 2,
    shared: tuple[bytes, ...] = (),
    subject: StoredImage | None = None,
) -> StoredImage:
    """Push config + `layers` random layers (+ `shared` layer bytes) and the manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    contents = [random_bytes(512 + seed % 97, seed * 100 + i) for i in range(layers)]
    contents += list(shared)
    blobs = [await add_blob(store, repository, data) for data in [config, *contents]]
    subject_descriptor = None
    if subject is not None:
        subject_descriptor = descriptor(subject.raw, OCI_MANIFEST)
    raw = manifest_bytes(config, contents, subject=subject_descriptor)
    return await _put(store, repository, tag, raw, OCI_MANIFEST, blobs=tuple(blobs))


async def add_index(
    store: Store, repository: str, tag: str | None, children: list[StoredImage]
) -> StoredImage:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(child.raw, OCI_MANIFEST) for child in children],
    }
    raw = json.dumps(doc).encode()
    image = await _put(store, repository, tag, raw, OCI_INDEX)
    return StoredImage(repository, image.digest, raw, (), tuple(children))


async def _put(
    store: Store,
    repository: str,
    tag: str | None,
    raw: bytes,
    media_type: str,
    *,
    blobs: tuple[Digest, ...] = (),
) -> StoredImage:
    digest = Digest.of(raw)
    reference = Reference(tag=tag) if tag is not None else Reference(digest=digest)
    await store.repository(repository).put_manifest(reference, raw, media_type)
    return StoredImage(repository, digest, raw, blobs)


async def files_of(driver: StorageDriver, path: str = paths.ROOT) -> dict[str, bytes]:
    """Every file under `path` with its content (small test stores only)."""
    found: dict[str, bytes] = {}
    try:
        names = await driver.list(path)
    except PathNotFound:
        return found
    for name in names:
        child = f"{path}/{name}"
        info = await driver.stat(child)
        if info.is_dir:
            found.update(await files_of(driver, child))
        else:
            found[child] = await driver.get_content(child)
    return found


async def blob_exists(driver: StorageDriver, digest: Digest) -> bool:
    try:
        await driver.stat(paths.blob_data(digest))
    except PathNotFound:
        return False
    return True


async def link_exists(driver: StorageDriver, path: str) -> bool:
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


Hook = Callable[[str, str], Awaitable[None]]


class ObservedDriver:
    """A driver decorator that awaits `hook(operation, path)` before every call, so a
    test can fail a call (raise from the hook) or act at an exact moment of a run."""

    def __init__(self, inner: StorageDriver, hook: Hook) -> None:
        self._inner = inner
        self._hook = hook
        self.name = inner.name
        self.traits = inner.traits

    async def get_content(self, path: str) -> bytes:
        await self._hook("get", path)
        return await self._inner.get_content(path)

    async def put_content(self, path: str, content: bytes) -> None:
        await self._hook("put", path)
        await self._inner.put_content(path, content)

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        await self._hook("read", path)
        return await self._inner.reader(path, offset)

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        await self._hook("write", path)
        return await self._inner.writer(path, append=append)

    async def stat(self, path: str) -> FileInfo:
        await self._hook("stat", path)
        return await self._inner.stat(path)

    async def list(self, path: str) -> builtins.list[str]:
        await self._hook("list", path)
        return await self._inner.list(path)

    async def move(self, src: str, dst: str) -> None:
        await self._hook("move", src)
        await self._inner.move(src, dst)

    async def delete(self, path: str) -> None:
        await self._hook("delete", path)
        await self._inner.delete(path)
