"""Copy locations in skopeo's syntax: `docker://HOST/REPO:TAG|@DIGEST`, `oci:DIR[:REF]`,
`oci-archive:FILE[:REF]` (the path ends at the first `:`; REF is a tag - the layout's
`org.opencontainers.image.ref.name` - or a digest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.client.endpoints import LayoutWriter, RegistryDestination, RegistrySource
from mirror.client.errors import ReferenceInvalid
from mirror.client.refs import ImageRef
from mirror.client.registry import Registry

if TYPE_CHECKING:
    from mirror.client.layout import LayoutSource

DOCKER, OCI, OCI_ARCHIVE = "docker", "oci", "oci-archive"


@dataclass(frozen=True, slots=True)
class Location:
    kind: str
    image: ImageRef | None = None  # docker
    path: Path | None = None  # oci, oci-archive
    reference: str | None = None  # of a layout

    @classmethod
    def parse(cls, text: str) -> Location:
        kind, sep, rest = text.partition(":")
        if sep and kind == DOCKER and rest.startswith("//"):
            return cls(DOCKER, ImageRef.parse(rest[2:], default_tag=None))
        if sep and kind in (OCI, OCI_ARCHIVE):
            path, _, reference = rest.partition(":")
            if not path:
                raise ReferenceInvalid(f"{text[:200]!r}: no path")
            return cls(kind, path=Path(path), reference=reference or None)
        raise ReferenceInvalid(
            f"{text[:200]!r} is not docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG] "
            "or oci-archive:FILE[:TAG]"
        )

    @property
    def tag(self) -> str | None:
        """The tag a destination is named with (None: the source's)."""
        if self.image is not None:
            return self.image.tag
        if self.reference is not None and ":" not in self.reference:
            return self.reference
        return None


RegistryFor = Callable[[str], Registry]


async def open_source(
    location: Location, registry_for: RegistryFor
) -> RegistrySource | LayoutSource:
    if location.image is not None:
        image = location.image
        if image.tag is None and image.digest is None:
            image = image.with_tag("latest")
        return RegistrySource(registry_for(image.api_host), image)
    assert location.path is not None
    # Imported here: a registry-to-registry copy never needs a layout (nor tarfile).
    from mirror.client.layout import LayoutSource

    return await LayoutSource.open(
        location.path, location.reference, archive=location.kind == OCI_ARCHIVE
    )


async def open_destination(
    location: Location, registry_for: RegistryFor, *, chunk_size: int | None = None
) -> RegistryDestination | LayoutWriter:
    if location.image is not None:
        if location.image.digest is not None:
            raise ReferenceInvalid(
                f"{location.image}: a destination is named by a tag (the digest is kept)"
            )
        return RegistryDestination(
            registry_for(location.image.api_host), location.image, chunk_size=chunk_size
        )
    assert location.path is not None
    if location.reference is not None and ":" in location.reference:
        raise ReferenceInvalid(f"{location.path}: a destination is named by a tag")
    from mirror.client.layout import ArchiveDestination, LayoutDestination

    if location.kind == OCI_ARCHIVE:
        return LayoutWriter(await ArchiveDestination.open(location.path))
    return LayoutWriter(await LayoutDestination.open(location.path))
