"""The decorators around one upstream, each on its own and in the standard stack.

The upstream is the real HTTP client (`RegistryUpstream` over `DistributionClient`)
answering through an httpx MockTransport; the metadata store is the in-memory one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.registryhttp.client import DistributionClient
from mirror.types import OCI_INDEX
from mirror.upstream.api import (
    Upstream,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.offline import OfflineUpstream
from mirror.upstream.stack import upstream_stack
from tests.support.upstreams import layer

pytestmark = pytest.mark.anyio

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
DIGEST = Digest.of(MANIFEST)


class Registry:
    """Answers manifest requests for library/app:v1; 404 for anything else. `down`
    refuses connections; `delay` holds every answer back."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.down = False
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.override: Callable[[httpx.Request], httpx.Response | None] | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise httpx.ConnectError("refused (injected)", request=request)
        if request.url.path == "/v2/library/app/manifests/v1":
            headers = {
                "content-type": OCI_INDEX,
                "docker-content-digest": str(DIGEST),
                "content-length": str(len(MANIFEST)),
                **self.headers,
            }
            body = b"" if request.method == "HEAD" else MANIFEST
            return httpx.Response(200, headers=headers, content=body)
        if request.url.path == "/v2/library/app/tags/list":
            return httpx.Response(200, json={"name": "library/app", "tags": ["v1"]})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})


def stack(
    registry: Registry,
    metrics: MetricsRegistry,
    metadata: MemoryMetadataStore | None = None,
    **options: object,
) -> Upstream:
    client = DistributionClient(
        "http://upstream.test",
        name="docker.io",
        transport=httpx.MockTransport(registry),
        retries=0,
        backoff=0,
    )
    return upstream_stack(
        client,
        prefix="docker.io",
        metadata=MemoryMetadataStore() if metadata is None else metadata,
        metrics=metrics,
        **options,  # type: ignore[arg-type]
    )


async def test_a_request_goes_through_every_layer() -> None:
    registry, metrics = Registry(), MetricsRegistry()
    registry.headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "7"}
    upstream = stack(registry, metrics)
    head = await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    assert head.digest == DIGEST
    fetched = await upstream.get_manifest("library/app", "v1", [OCI_INDEX])
    assert fetched.raw == MANIFEST
    assert await upstream.list_tags("library/app") == ["v1"]
    assert upstream.name == "docker.io"
    assert upstream.ratelimit is not None and upstream.ratelimit.remaining == 7
    requests = metrics.counter("mirror_upstream_requests_total", "", ("upstream", "op"))
    assert requests.get("docker.io", "head_manifest") == 1
    assert requests.get("docker.io", "get_manifest") == 1
    gauge = metrics.gauge("mirror_upstream_ratelimit_remaining", "", ("upstream",))
    assert gauge.get("docker.io") == 7.0
    await upstream.aclose()
    await upstream.aclose()  # idempotent


async def test_offline_sends_nothing_and_can_be_switched_back() -> None:
    registry, metrics = Registry(), MetricsRegistry()
    upstream = stack(registry, metrics, offline=True)
    with pytest.raises(UpstreamUnavailable, match="offline"):
        await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    with pytest.raises(UpstreamUnavailable, match="offline"):
        await upstream.open_blob("library/app", DIGEST)
    assert registry.requests == []
    layer(upstream, OfflineUpstream).offline = False
    assert (await upstream.head_manifest("library/app", "v1", [OCI_INDEX])).digest == DIGEST
    await upstream.aclose()


async def test_open_breaker_sends_nothing_and_is_not_counted_as_requests() -> None:
    registry, metrics = Registry(), MetricsRegistry()
    upstream = stack(registry, metrics, breaker=CircuitBreaker(failures=2, reset=60.0))
    registry.down = True
    for _ in range(5):
        with pytest.raises(UpstreamUnavailable):
            await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    assert len(registry.requests) == 2
    requests = metrics.counter("mirror_upstream_requests_total", "", ("upstream", "op"))
    assert requests.get("docker.io", "head_manifest") == 2
    errors = metrics.counter("mirror_upstream_errors_total", "", ("upstream", "status"))
    assert errors.get("docker.io", "network") == 2
    gauge = metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",))
    assert gauge.get("docker.io") == 2.0
    await upstream.aclose()


async def test_a_404_is_remembered_under_what_was_asked() -> None:
    registry, metrics, metadata = Registry(), MetricsRegistry(), MemoryMetadataStore()
    upstream = stack(registry, metrics, metadata, negative_ttl=30.0)
    for _ in range(3):
        with pytest.raises(UpstreamNotFound):
            await upstream.get_manifest("library/app", "v2", [OCI_INDEX])
    assert registry.requests == [("GET", "/v2/library/app/manifests/v2")]
    assert await metadata.get("neg:docker.io/library/app:v2") == b"1"
    missing = Digest.of(b"missing")
    for _ in range(2):
        with pytest.raises(UpstreamNotFound):
            await upstream.head_blob("library/app", missing)
        with pytest.raises(UpstreamNotFound):
            await upstream.open_blob("library/app", missing)
    assert registry.requests[1:] == [("HEAD", f"/v2/library/app/blobs/{missing}")]
    # Other references, and tag lists, are still asked.
    assert (await upstream.head_manifest("library/app", "v1", [OCI_INDEX])).digest == DIGEST
    with pytest.raises(UpstreamNotFound):
        await upstream.list_tags("library/other")
    with pytest.raises(UpstreamNotFound):
        await upstream.list_tags("library/other")
    assert registry.requests.count(("GET", "/v2/library/other/tags/list")) == 2
    await upstream.aclose()


async def test_a_zero_negative_ttl_remembers_nothing() -> None:
    registry, metrics, metadata = Registry(), MetricsRegistry(), MemoryMetadataStore()
    upstream = stack(registry, metrics, metadata, negative_ttl=0.0)
    for _ in range(2):
        with pytest.raises(UpstreamNotFound):
            await upstream.head_manifest("library/app", "v2", [OCI_INDEX])
    assert len(registry.requests) == 2
    assert len(metadata) == 0
    await upstream.aclose()


async def test_concurrent_identical_requests_go_upstream_once() -> None:
    registry, metrics = Registry(), MetricsRegistry()
    registry.delay = 0.05
    upstream = stack(registry, metrics)
    heads = await asyncio.gather(
        *(upstream.head_manifest("library/app", "v1", [OCI_INDEX]) for _ in range(5))
    )
    gets = await asyncio.gather(
        *(upstream.get_manifest("library/app", "v1", [OCI_INDEX]) for _ in range(5))
    )
    tags = await asyncio.gather(*(upstream.list_tags("library/app") for _ in range(5)))
    assert {h.digest for h in heads} == {DIGEST}
    assert {g.raw for g in gets} == {MANIFEST}
    assert tags == [["v1"]] * 5
    assert registry.requests == [
        ("HEAD", "/v2/library/app/manifests/v1"),
        ("GET", "/v2/library/app/manifests/v1"),
        ("GET", "/v2/library/app/tags/list"),
    ]
    # Failures are shared too, and not remembered as successes.
    results = await asyncio.gather(
        *(upstream.head_manifest("library/app", "v9", [OCI_INDEX]) for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, UpstreamNotFound) for r in results)
    assert registry.requests.count(("HEAD", "/v2/library/app/manifests/v9")) == 1
    await upstream.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401),
        httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'}),
        httpx.Response(403),
        httpx.Response(404),
        httpx.Response(429),
        httpx.Response(400),
        # A manifest that does not match its digest header: a content error.
        httpx.Response(200, content=b"{}", headers={"docker-content-digest": str(DIGEST)}),
    ],
    ids=["401", "401-basic", "403", "404", "429", "400", "content"],
)
async def test_answers_a_client_can_provoke_never_open_the_breaker(answer: httpx.Response) -> None:
    """Docker Hub answers 401 for a repository that does not exist: five of those must
    not shut every uncached pull of the upstream out (issue 8, item 3)."""
    registry, metrics = Registry(), MetricsRegistry()
    upstream = stack(registry, metrics, breaker=CircuitBreaker(failures=2, reset=60.0))
    registry.override = lambda request: answer if "/private/" in request.url.path else None
    for _ in range(6):
        with pytest.raises(UpstreamError):
            await upstream.get_manifest("private/app", "v1", [OCI_INDEX])
    assert (await upstream.head_manifest("library/app", "v1", [OCI_INDEX])).digest == DIGEST
    gauge = metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",))
    assert gauge.get("docker.io") == 0.0
    await upstream.aclose()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_open_the_breaker(status: int) -> None:
    registry, metrics = Registry(), MetricsRegistry()
    upstream = stack(registry, metrics, breaker=CircuitBreaker(failures=2, reset=60.0))
    registry.override = lambda request: httpx.Response(status)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    registry.override = None
    with pytest.raises(UpstreamUnavailable, match="not asking it") as caught:
        await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    assert len(registry.requests) == 2
    assert caught.value.retry_after is not None and 1 <= int(caught.value.retry_after) <= 60
    await upstream.aclose()


async def test_an_unreachable_token_service_opens_the_breaker() -> None:
    registry, metrics = Registry(), MetricsRegistry()
    upstream = stack(registry, metrics, breaker=CircuitBreaker(failures=2, reset=60.0))

    def challenge(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            raise httpx.ConnectError("token service down", request=request)
        realm = 'Bearer realm="http://auth.test/token",service="x"'
        return httpx.Response(401, headers={"www-authenticate": realm})

    registry.override = challenge
    for _ in range(2):
        with pytest.raises(UpstreamError, match="token endpoint"):
            await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    with pytest.raises(UpstreamUnavailable, match="not asking it"):
        await upstream.head_manifest("library/app", "v1", [OCI_INDEX])
    await upstream.aclose()
