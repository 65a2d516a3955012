"""The ends of a copy: a registry repository (`RegistrySource`, `RegistryDestination`)
and an OCI layout being written (`LayoutWriter`; `layout.LayoutSource` reads one).
Each is what `copy.Source` / `copy.Destination` describe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mirror.client.copy import Source
from mirror.client.referrers import ReferrerWriter, find_referrers
from mirror.client.refs import ImageRef
from mirror.client.registry import Pushed, Registry, RemoteManifest
from mirror.digests import Digest
from mirror.registryhttp.errors import UpstreamNotFound
from mirror.types import Descriptor

if TYPE_CHECKING:  # a layout is imported (tarfile and all) only by a copy that uses one
    from mirror.client.layout import LayoutDestination


class RegistrySource:
    def __init__(self, registry: Registry, ref: ImageRef) -> None:
        self._registry = registry
        self._ref = ref
        self.name = str(ref)

    @property
    def tag(self) -> str | None:
        return self._ref.tag

    @property
    def registry_repo(self) -> tuple[str, str]:
        return (self._registry.host, self._ref.repository)

    async def root(self) -> RemoteManifest:
        return await self._registry.get_manifest(self._ref.repository, self._ref.reference)

    async def manifest(self, digest: Digest) -> RemoteManifest:
        return await self._registry.get_manifest(self._ref.repository, str(digest))

    async def blob(self, descriptor: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        registry, repo = self._registry, self._ref.repository
        async with await registry.open_blob(repo, descriptor.digest, offset) as body:
            async for chunk in body:
                yield chunk

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        return await find_referrers(self._registry, self._ref.repository, subject)

    async def aclose(self) -> None:
        pass


class RegistryDestination:
    def __init__(self, registry: Registry, ref: ImageRef, *, chunk_size: int | None = None):
        self._registry = registry
        self._ref = ref
        self._chunk_size = chunk_size
        self._referrers = ReferrerWriter(registry, ref.repository)
        self.name = str(ref)

    async def put_blob(
        self, descriptor: Descriptor, source: Source, opener: Callable[[int], AsyncIterator[bytes]]
    ) -> Pushed:
        mount_from: list[str] = []
        origin = source.registry_repo
        if origin is not None and origin[0] == self._registry.host:
            mount_from.append(origin[1])
        return await self._registry.push_blob(
            self._ref.repository,
            descriptor.digest,
            descriptor.size,
            opener,
            chunk_size=self._chunk_size,
            mount_from=mount_from,
        )

    async def put_manifest(self, manifest: RemoteManifest, tag: str | None, *, root: bool) -> bool:
        repo = self._ref.repository
        if tag is None:
            try:
                head = await self._registry.head_manifest(repo, str(manifest.digest))
            except UpstreamNotFound:
                head = None
            if head is not None:
                return False
        await self._registry.put_manifest(
            repo, tag or str(manifest.digest), manifest.raw, manifest.media_type
        )
        return True

    async def put_referrer(self, manifest: RemoteManifest, subject: Digest) -> None:
        await self._referrers.push(manifest, subject)

    async def commit(self) -> None:
        pass

    async def abort(self) -> None:
        pass


class LayoutWriter:
    """A `Destination` over a layout directory (or an archive's working directory)."""

    def __init__(self, layout: LayoutDestination) -> None:
        self._layout = layout
        self.name = layout.name

    async def put_blob(
        self, descriptor: Descriptor, source: Source, opener: Callable[[int], AsyncIterator[bytes]]
    ) -> Pushed:
        if await self._layout.has(descriptor):
            return Pushed.PRESENT
        await self._layout.write(descriptor, opener(0))
        return Pushed.UPLOADED

    async def put_manifest(self, manifest: RemoteManifest, tag: str | None, *, root: bool) -> bool:
        descriptor = manifest.descriptor()
        written = False
        if not await self._layout.has(descriptor):
            await self._layout.write_bytes(descriptor, manifest.raw)
            written = True
        if root:
            self._layout.name_image(descriptor, tag)
        return written

    async def put_referrer(self, manifest: RemoteManifest, subject: Digest) -> None:
        """Stored as a blob and listed in index.json, untagged (as oras keeps them);
        without annotations, which would keep a second copy from replacing the first."""
        descriptor = manifest.descriptor()
        if not await self._layout.has(descriptor):
            await self._layout.write_bytes(descriptor, manifest.raw)
        entry = replace(manifest.parsed().referrer_descriptor(), annotations=None)
        self._layout.name_image(entry, None)

    async def commit(self) -> None:
        await self._layout.commit()

    async def abort(self) -> None:
        await self._layout.abort()
