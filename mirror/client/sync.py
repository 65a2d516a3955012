"""`SyncRegistry`: the async `Registry` for code that is not async (scripts, notebooks).

Each instance runs its own event loop (`asyncio.Runner`); do not call it from inside a
running loop. Blobs come whole (`get_blob`) or go to a file (`download_blob`), and a
push takes bytes or a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from anyio import to_thread

from mirror.client.credentials import Credentials
from mirror.client.registry import ACCEPT_ALL, Pushed, Registry, RemoteManifest
from mirror.digests import Digest, DigestHasher
from mirror.registryhttp.client import ManifestHead
from mirror.types import Descriptor

T = TypeVar("T")
_CHUNK = 1 << 20


class SyncRegistry:
    """Blocking calls on one registry; close it (or use `with`)."""

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        **options: Any,
    ) -> None:
        self._runner = asyncio.Runner()
        self._registry = Registry(host, insecure=insecure, credentials=credentials, **options)

    def __enter__(self) -> SyncRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._registry.aclose())
        self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def ping(self) -> None:
        self._run(self._registry.ping())

    def catalog(self) -> list[str]:
        return self._run(self._registry.catalog())

    def tags(self, repository: str) -> list[str]:
        return self._run(self._registry.tags(repository))

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        return self._run(self._registry.head_manifest(repository, reference))

    def get_manifest(
        self, repository: str, reference: str, accept: tuple[str, ...] = ACCEPT_ALL
    ) -> RemoteManifest:
        return self._run(self._registry.get_manifest(repository, reference, accept))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        return self._run(self._registry.put_manifest(repository, reference, raw, media_type))

    def delete_manifest(self, repository: str, digest: Digest) -> None:
        self._run(self._registry.delete_manifest(repository, digest))

    def referrers(self, repository: str, digest: Digest) -> list[Descriptor]:
        return self._run(self._registry.referrers(repository, digest))

    def head_blob(self, repository: str, digest: Digest) -> int | None:
        return self._run(self._registry.head_blob(repository, digest))

    def get_blob(self, repository: str, digest: Digest) -> bytes:
        return self._run(self._registry.get_blob(repository, digest))

    def download_blob(self, repository: str, digest: Digest, path: Path) -> int:
        """Write a blob to `path` (verified before this returns); the bytes written."""
        return self._run(self._download(repository, digest, path))

    async def _download(self, repository: str, digest: Digest, path: Path) -> int:
        written = 0
        with path.open("wb") as out:
            async with await self._registry.open_blob(repository, digest) as body:
                async for chunk in body:
                    await to_thread.run_sync(out.write, chunk)
                    written += len(chunk)
        return written

    def push_blob(self, repository: str, data: bytes | Path) -> tuple[Digest, Pushed]:
        """Upload bytes or a file's content; its digest and what happened."""
        return self._run(self._push(repository, data))

    async def _push(self, repository: str, data: bytes | Path) -> tuple[Digest, Pushed]:
        if isinstance(data, bytes):
            digest, size = Digest.of(data), len(data)

            async def from_bytes(offset: int) -> AsyncIterator[bytes]:
                yield data[offset:]

            return digest, await self._registry.push_blob(repository, digest, size, from_bytes)
        path = data
        digest, size = await to_thread.run_sync(_file_digest, path)

        async def from_file(offset: int) -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                f.seek(offset)
                while chunk := await to_thread.run_sync(f.read, _CHUNK):
                    yield chunk

        return digest, await self._registry.push_blob(repository, digest, size, from_file)


def _file_digest(path: Path) -> tuple[Digest, int]:
    hasher = DigestHasher()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.digest(), hasher.size
