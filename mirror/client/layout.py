"""OCI image layouts, as a directory (`oci:`) and as a tar of one (`oci-archive:`).

Reading: `index.json` names the images (a tag is the entry's
`org.opencontainers.image.ref.name`); blobs are `blobs/<alg>/<hex>`, each verified
against its digest as it is read. An archive is read in place: a tar without
compression keeps every member's bytes in one run, so a blob is a range of the file.

Writing never leaves a damaged layout: each blob is written beside its name, checked
against its digest and size, and renamed into place; `index.json` is replaced (written
beside, renamed) only after every blob is in place. An archive is built as a directory
next to the file, then tarred to `FILE.partial` and renamed over `FILE` (which holds
that one image then, as with skopeo).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from anyio import to_thread

from mirror.archive.format import LAYOUT, LAYOUT_CONTENT, REF_NAME, blob_member
from mirror.client.errors import ContentMismatch, LayoutError
from mirror.client.layoutfiles import INDEX, DirFiles, LayoutFiles, TarFiles
from mirror.client.registry import RemoteManifest
from mirror.digests import Digest, DigestHasher
from mirror.errors import DigestInvalid, ManifestInvalid, Unsupported
from mirror.types import OCI_INDEX, Descriptor, Manifest

CHUNK = 1 << 20
MAX_INDEX = 64 << 20


def _read_chunk(f: IO[bytes], n: int) -> bytes:
    return f.read(n)


class LayoutSource:
    """The image `reference` (a tag, a digest, or None: the only image) of a layout."""

    def __init__(self, files: LayoutFiles, reference: str | None) -> None:
        self._files = files
        self.name = files.name
        self.reference = reference
        self._tag: str | None = None
        self._subjects: dict[Digest, list[Descriptor]] | None = None

    @property
    def tag(self) -> str | None:
        return self._tag

    @property
    def registry_repo(self) -> tuple[str, str] | None:
        return None

    @classmethod
    async def open(cls, path: Path, reference: str | None, *, archive: bool) -> LayoutSource:
        files: LayoutFiles = await to_thread.run_sync(TarFiles if archive else DirFiles, path)
        return cls(files, reference)

    async def aclose(self) -> None:
        self._files.close()

    async def root(self) -> RemoteManifest:
        raw = await to_thread.run_sync(self._files.read, INDEX, MAX_INDEX)
        entries = _entries(raw, self.name)
        chosen = _choose(entries, self.reference, self.name)
        names = chosen.annotations or {}
        tag = names.get(REF_NAME)
        self._tag = tag.rpartition(":")[2] if isinstance(tag, str) and tag else None
        return await self._manifest(chosen.digest, chosen.media_type, chosen.size)

    async def manifest(self, digest: Digest) -> RemoteManifest:
        return await self._manifest(digest, None, None)

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        """The manifests index.json lists whose subject is `subject` (a layout's
        referrers are listed there, untagged, as oras and `mirror copy` write them)."""
        if self._subjects is None:
            subjects: dict[Digest, list[Descriptor]] = {}
            raw = await to_thread.run_sync(self._files.read, INDEX, MAX_INDEX)
            for entry in _entries(raw, self.name):
                found = await self._manifest(entry.digest, entry.media_type, entry.size)
                parsed = found.parsed()
                if parsed.subject is not None:
                    referrer = parsed.referrer_descriptor()
                    subjects.setdefault(parsed.subject.digest, []).append(referrer)
            self._subjects = subjects
        return self._subjects.get(subject, [])

    async def _manifest(
        self, digest: Digest, media_type: str | None, size: int | None
    ) -> RemoteManifest:
        raw = await to_thread.run_sync(self._files.read, blob_member(digest), MAX_INDEX)
        if Digest.of(raw, digest.algorithm) != digest or (size is not None and len(raw) != size):
            raise ContentMismatch(f"{self.name}: manifest {digest} does not match its digest")
        try:
            parsed = Manifest.parse(raw, media_type, digest)
        except (ManifestInvalid, Unsupported) as exc:
            raise LayoutError(f"{self.name}: manifest {digest}: {exc.message}") from None
        return RemoteManifest(raw, parsed.media_type, digest)

    async def blob(self, descriptor: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """The blob's bytes from `offset`; read from 0 they are verified at the end."""
        member = blob_member(descriptor.digest)
        f, left = await to_thread.run_sync(self._files.open_at, member, offset)
        hasher = DigestHasher(descriptor.digest.algorithm) if not offset else None
        try:
            while left > 0:
                chunk = await to_thread.run_sync(_read_chunk, f, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                yield chunk
        finally:
            f.close()
        if hasher is not None and (
            hasher.size != descriptor.size or hasher.digest() != descriptor.digest
        ):
            raise ContentMismatch(
                f"{self.name}: blob {descriptor.digest} hashes to {hasher.digest()} "
                f"({hasher.size} bytes)"
            )


def _entries(raw: bytes, where: str) -> list[Descriptor]:
    try:
        doc = json.loads(raw)
        manifests = doc["manifests"]
        return [Descriptor.from_json(m, f"manifests[{i}]") for i, m in enumerate(manifests)]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise LayoutError(f"{where}: {INDEX} is not an image index") from None
    except ManifestInvalid as exc:
        raise LayoutError(f"{where}: {INDEX}: {exc.message}") from None


def _choose(entries: list[Descriptor], reference: str | None, where: str) -> Descriptor:
    if reference is None:
        # An untagged entry with an artifact type is a referrer, not one of the images.
        images = [e for e in entries if e.artifact_type is None or e.annotations] or entries
        if len(images) != 1:
            raise LayoutError(f"{where} holds {len(images)} images; name one (:TAG)")
        return images[0]
    for entry in entries:
        if (entry.annotations or {}).get(REF_NAME) == reference:
            return entry
    try:
        digest = Digest.parse(reference)
    except DigestInvalid:
        digest = None
    for entry in entries:
        if entry.digest == digest:
            return entry
    raise LayoutError(f"{where} has no image {reference!r}")


class LayoutDestination:
    """Writes blobs and manifests into a layout directory; `commit` names the image."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self._entries: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, path: Path) -> LayoutDestination:
        await to_thread.run_sync(_prepare, path)
        return cls(path, str(path))

    def _path(self, digest: Digest) -> Path:
        return self.root / blob_member(digest)

    async def has(self, descriptor: Descriptor) -> bool:
        def check() -> bool:
            try:
                return self._path(descriptor.digest).stat().st_size == descriptor.size
            except FileNotFoundError:
                return False

        return await to_thread.run_sync(check)

    async def write(self, descriptor: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Write a blob under its digest, verified before it is renamed into place."""
        final = self._path(descriptor.digest)
        partial = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
        f = await to_thread.run_sync(_create, partial)
        hasher = DigestHasher(descriptor.digest.algorithm)
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                await to_thread.run_sync(f.write, chunk)
            await to_thread.run_sync(f.close)
            if hasher.size != descriptor.size or hasher.digest() != descriptor.digest:
                raise ContentMismatch(
                    f"blob {descriptor.digest} hashes to {hasher.digest()} ({hasher.size} bytes)"
                )
            await to_thread.run_sync(os.replace, partial, final)
        except BaseException:
            f.close()
            partial.unlink(missing_ok=True)
            raise

    async def write_bytes(self, descriptor: Descriptor, raw: bytes) -> None:
        async def one() -> AsyncIterator[bytes]:
            yield raw

        await self.write(descriptor, one())

    def name_image(self, descriptor: Descriptor, tag: str | None) -> None:
        """Add the image to what `commit` puts in index.json."""
        entry = descriptor.to_json()
        entry.pop("platform", None)
        if tag is not None:
            entry["annotations"] = {REF_NAME: tag}
        self._entries.append(entry)

    async def commit(self) -> None:
        await to_thread.run_sync(_write_index, self.root, self._entries)

    async def abort(self) -> None:
        pass


class ArchiveDestination(LayoutDestination):
    """A layout built in a directory beside `target`, tarred over it at `commit`."""

    def __init__(self, root: Path, target: Path) -> None:
        super().__init__(root, str(target))
        self._target = target

    @classmethod
    async def open(cls, path: Path) -> ArchiveDestination:
        def make() -> Path:
            parent = path.parent if str(path.parent) else Path(".")
            work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
            _prepare(work)
            return work

        try:
            work = await to_thread.run_sync(make)
        except OSError as exc:
            raise LayoutError(f"{path}: {exc.strerror or exc}") from None
        return cls(work, path)

    async def commit(self) -> None:
        await super().commit()
        await to_thread.run_sync(_tar, self.root, self._target)
        await self.abort()

    async def abort(self) -> None:
        await to_thread.run_sync(shutil.rmtree, self.root, True)


def _prepare(path: Path) -> None:
    try:
        (path / "blobs").mkdir(parents=True, exist_ok=True)
        layout = path / LAYOUT
        if not layout.exists():
            layout.write_bytes(LAYOUT_CONTENT)
        for algorithm in ("sha256", "sha512"):
            (path / "blobs" / algorithm).mkdir(exist_ok=True)
    except OSError as exc:
        raise LayoutError(f"{path}: {exc.strerror or exc}") from None


def _create(path: Path) -> IO[bytes]:
    return path.open("xb")


def _write_index(root: Path, entries: list[dict[str, Any]]) -> None:
    index = root / INDEX
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if index.exists():
        try:
            loaded = json.loads(index.read_bytes())
        except (ValueError, UnicodeDecodeError):
            raise LayoutError(f"{root}: {INDEX} is not JSON") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("manifests"), list):
            doc = loaded
    kept = list(doc["manifests"])
    for entry in entries:
        name = entry.get("annotations", {}).get(REF_NAME)
        kept = [
            old
            for old in kept
            if not isinstance(old, dict)
            or (
                (old.get("annotations") or {}).get(REF_NAME) != name
                if name is not None
                else not (old.get("digest") == entry["digest"] and not old.get("annotations"))
            )
        ]
        kept.append(entry)
    doc["manifests"] = kept
    partial = root / f".{INDEX}.{secrets.token_hex(4)}.partial"
    partial.write_text(json.dumps(doc, indent=1))
    os.replace(partial, index)


def _tar(root: Path, target: Path) -> None:
    partial = target.with_name(f"{target.name}.partial")
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in (LAYOUT, INDEX):
                tar.add(root / name, arcname=name)
            for algorithm in sorted(p.name for p in (root / "blobs").iterdir()):
                folder = root / "blobs" / algorithm
                for blob in sorted(folder.iterdir()):
                    if not blob.name.startswith("."):
                        tar.add(blob, arcname=f"blobs/{algorithm}/{blob.name}")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
