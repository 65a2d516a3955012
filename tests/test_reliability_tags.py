"""Reliability suite, racing tag writes: on `mirror serve` with two workers, 50 manifests
are tagged onto five tags while the same manifests are deleted by digest, all at once;
afterwards no tag is listed that does not resolve (the reference left 9 of 50 dangling)
and every tag resolves to one of the manifests written under it (issue 8, proof)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.fsck import check_registry
from tests.support.mirrorproc import run_mirror
from tests.support.oci import OCI_MANIFEST, digest_of, manifest_bytes, push_blob, random_bytes

pytestmark = pytest.mark.slow

NAME = "race/app"
COUNT = 50
TAGS = 5


async def seed(url: str) -> list[bytes]:
    """COUNT manifests sharing one layer, each with its own config (pushed, not tagged)."""
    layer = random_bytes(4096, 1)
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        await push_blob(client, NAME, layer)
        manifests = []
        for index in range(COUNT):
            config = json.dumps({"architecture": "amd64", "os": "linux", "n": index}).encode()
            await push_blob(client, NAME, config)
            manifests.append(manifest_bytes(config, [layer]))
        return manifests


def put(url: str, reference: str, raw: bytes) -> int:
    with httpx.Client(base_url=url, trust_env=False, timeout=30.0) as client:
        r = client.put(
            f"/v2/{NAME}/manifests/{reference}",
            content=raw,
            headers={"Content-Type": OCI_MANIFEST},
        )
        return r.status_code


def delete(url: str, digest: str) -> int:
    with httpx.Client(base_url=url, trust_env=False, timeout=30.0) as client:
        return client.delete(f"/v2/{NAME}/manifests/{digest}").status_code


def test_racing_tag_writes_and_deletes_leave_no_dangling_tag(tmp_path: Path) -> None:
    with run_mirror(tmp_path, workers=2) as registry:
        manifests = asyncio.run(seed(registry.url))
        with ThreadPoolExecutor(32) as pool:
            pushed = [pool.submit(put, registry.url, digest_of(raw), raw) for raw in manifests]
            assert {done.result() for done in pushed} == {201}
            writes = [
                pool.submit(put, registry.url, f"t{index % TAGS}", raw)
                for index, raw in enumerate(manifests)
            ]
            deletes = [
                pool.submit(delete, registry.url, digest_of(raw))
                for raw in manifests[::2]  # half of them
            ]
            assert {done.result() for done in writes} == {201}
            assert {done.result() for done in deletes} <= {202, 404}
        report = check_registry(registry.url)
        report.assert_clean()
        assert report.dangling_tags == {}
        written = {
            f"t{tag}": {digest_of(raw) for raw in manifests[tag::TAGS]} for tag in range(TAGS)
        }
        for tag, digest in report.tags.get(NAME, {}).items():
            assert digest in written[tag], tag
        assert 'status="500"' not in httpx.get(f"{registry.url}/metrics", trust_env=False).text
