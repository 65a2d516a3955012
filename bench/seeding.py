"""Fill a registry with thousands of tags or repositories, fast, through its HTTP API.

Every manifest is the same small OCI image manifest (one tiny config blob, no layers), so
seeding costs one manifest PUT per tag, and per repository one cross-repository mount of
the config blob plus the PUT. Requests run concurrently over a bounded connection pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urljoin

import httpx

from tests.support.images import OCI_CONFIG, OCI_MANIFEST

CONCURRENCY = 16
MAX_PAGES = 10_000  # bound on catalog pages walked when counting repositories
CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [],
    }
).encode()


class SeedError(RuntimeError):
    """The registry refused a seeding request."""


def _expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        request = response.request
        raise SeedError(
            f"{request.method} {request.url} -> {response.status_code}: {response.text[:300]}"
        )
    return response


async def _finish_upload(client: httpx.AsyncClient, location: str) -> None:
    separator = "&" if "?" in location else "?"
    url = f"{location}{separator}digest={CONFIG_DIGEST}"
    headers = {"Content-Type": "application/octet-stream"}
    _expect(await client.put(url, content=CONFIG, headers=headers), 201)


async def upload_config(client: httpx.AsyncClient, repository: str) -> None:
    """Upload the config blob into `repository` (POST, then PUT with the bytes)."""
    started = _expect(await client.post(f"/v2/{repository}/blobs/uploads/"), 202)
    await _finish_upload(client, urljoin(str(client.base_url), started.headers["location"]))


async def mount_config(client: httpx.AsyncClient, repository: str, source: str) -> None:
    """Link the config blob into `repository` from `source`; upload it if mounting fails."""
    url = f"/v2/{repository}/blobs/uploads/?mount={CONFIG_DIGEST}&from={source}"
    response = _expect(await client.post(url), 201, 202)
    if response.status_code == 202:
        await _finish_upload(client, urljoin(str(client.base_url), response.headers["location"]))


async def put_manifest(client: httpx.AsyncClient, repository: str, tag: str) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    url = f"/v2/{repository}/manifests/{tag}"
    _expect(await client.put(url, content=MANIFEST, headers=headers), 201)


async def _bounded(jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


def _client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0, trust_env=False)


async def seed_repositories(url: str, names: Sequence[str]) -> None:
    """Create each repository in `names` with one tag, `latest`."""
    if not names:
        return
    async with _client(url) as client:
        first = names[0]
        await upload_config(client, first)
        await put_manifest(client, first, "latest")

        def job(name: str) -> Callable[[], Awaitable[None]]:
            async def create() -> None:
                await mount_config(client, name, first)
                await put_manifest(client, name, "latest")

            return create

        await _bounded([job(name) for name in names[1:]])


async def seed_tags(url: str, repository: str, tags: Sequence[str]) -> None:
    """Point every tag in `tags` of `repository` at the one seeding manifest."""
    async with _client(url) as client:
        await upload_config(client, repository)

        def job(tag: str) -> Callable[[], Awaitable[None]]:
            return lambda: put_manifest(client, repository, tag)

        await _bounded([job(tag) for tag in tags])


def count_repositories(url: str, page: int = 100) -> int:
    """Walk the whole catalog page by page (following Link headers) and count."""
    total = 0
    next_url: str | None = f"{url}/v2/_catalog?n={page}"
    with httpx.Client(timeout=60.0, trust_env=False) as client:
        for _ in range(MAX_PAGES):
            if next_url is None:
                return total
            response = _expect(client.get(next_url), 200)
            total += len(response.json().get("repositories") or [])
            link = response.links.get("next", {}).get("url")
            next_url = urljoin(url, link) if link else None
    raise SeedError(f"the catalog of {url} has more than {MAX_PAGES} pages")
