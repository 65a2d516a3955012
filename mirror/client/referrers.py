"""Referrers: the manifests whose `subject` is a given manifest (signatures, SBOMs,
attestations), found and stored the way the OCI distribution spec 1.1 says.

A registry with the referrers API lists them at `GET /v2/<name>/referrers/<digest>`
and indexes a pushed referrer itself (its PUT answers with `OCI-Subject`). A registry
without it (the API answers 404; Distribution 2.8 is one) keeps them by the spec's
fallback, the referrers tag schema: an image index tagged `<alg>-<hex>` after the
subject's digest, which whoever pushes a referrer updates (GET, add, PUT).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

from mirror.client.errors import ContentMismatch
from mirror.client.registry import Registry, RemoteManifest
from mirror.digests import Digest
from mirror.errors import ManifestInvalid, Unsupported
from mirror.registryhttp.errors import UpstreamNotFound
from mirror.types import OCI_INDEX, Descriptor, Manifest

# The spec truncates the encoded digest of the fallback tag to 64 characters.
FALLBACK_HEX = 64


def fallback_tag(subject: Digest) -> str:
    """The referrers tag schema's tag of `subject`: `sha256-<hex>`."""
    return f"{subject.algorithm}-{subject.hex[:FALLBACK_HEX]}"


async def find_referrers(registry: Registry, repository: str, subject: Digest) -> list[Descriptor]:
    """The referrers of `subject`: the referrers API's list, else the fallback tag's."""
    try:
        return await registry.referrers(repository, subject)
    except UpstreamNotFound:
        pass
    index = await _fallback_index(registry, repository, subject)
    return [] if index is None else list(index.manifests)


async def _fallback_index(registry: Registry, repository: str, subject: Digest) -> Manifest | None:
    tag = fallback_tag(subject)
    try:
        fetched = await registry.get_manifest(repository, tag, (OCI_INDEX,))
    except UpstreamNotFound:
        return None
    try:
        index = fetched.parsed()
    except (ManifestInvalid, Unsupported) as exc:
        raise ContentMismatch(f"{registry.host}/{repository}:{tag}: {exc.message}") from None
    if not index.is_index:
        raise ContentMismatch(
            f"{registry.host}/{repository}:{tag} is the referrers tag of {subject}"
            f" but holds a {fetched.media_type}, not an image index"
        )
    return index


class ReferrerWriter:
    """Pushes referrers to one repository of a registry, keeping the fallback index of
    each subject when the registry has no referrers API (one update at a time per
    subject: two referrers of one subject would otherwise each drop the other)."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self._registry = registry
        self._repository = repository
        self._locks: defaultdict[Digest, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def push(self, manifest: RemoteManifest, subject: Digest) -> None:
        registry, repository = self._registry, self._repository
        stored = await registry.store_manifest(
            repository, str(manifest.digest), manifest.raw, manifest.media_type
        )
        if stored.subject is not None:  # the registry indexed it (referrers API)
            return
        entry = manifest.parsed().referrer_descriptor()
        async with self._locks[subject]:
            index = await _fallback_index(registry, repository, subject)
            entries = list(index.manifests) if index is not None else []
            if any(e.digest == entry.digest for e in entries):
                return
            entries.append(entry)
            raw = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [e.to_json() for e in entries],
                },
                separators=(",", ":"),
            ).encode()
            await registry.put_manifest(repository, fallback_tag(subject), raw, OCI_INDEX)
