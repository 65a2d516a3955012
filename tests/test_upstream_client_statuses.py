"""How DistributionClient maps upstream statuses and transport faults, and what it retries."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from mirror.digests import Digest
from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from tests.support.fakeregistry import ACCEPT, MANIFEST, REPO, FakeRegistry, answering, opened


@pytest.mark.anyio
async def test_404_is_not_found_with_the_registry_error_code() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamNotFound, match="MANIFEST_UNKNOWN: manifest unknown") as caught:
            await client.get_manifest(REPO, "nope", ACCEPT)
        with pytest.raises(UpstreamNotFound):
            await client.head_manifest(REPO, "nope", ACCEPT)
        with pytest.raises(UpstreamNotFound):
            await client.open_blob(REPO, Digest.of(b"other"))
    assert caught.value.status == 404
    assert len(fake.requests) == 3


@pytest.mark.anyio
async def test_429_is_rate_limited_with_retry_after_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(429, headers={"retry-after": "30"}))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamRateLimited) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.retry_after == "30"
    assert caught.value.status == 429
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_500_is_unavailable_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(500))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.head_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 500
    assert len(fake.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_a_bounded_number_of_times(status: int) -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(status, headers={"retry-after": "5"}))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert type(caught.value) is UpstreamUnavailable
    assert caught.value.status == status
    assert caught.value.retry_after == "5"
    assert len(fake.requests) == 4


@pytest.mark.anyio
async def test_retry_recovers_and_zero_retries_means_one_try() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda r: httpx.Response(503) if len(fake.requests) < 3 else None
    async with opened(fake.client(retries=2)) as client:
        assert (await client.get_manifest(REPO, "latest", ACCEPT)).raw == MANIFEST
    assert len(fake.requests) == 3

    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(503))
    async with opened(fake.client(retries=0)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.ping()
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_retries_back_off_exponentially() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(502))
    async with opened(fake.client(retries=3, backoff=0.02)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            await client.ping()
    # Delays are 0.02 * (1, 2, 4) with jitter in [0.5, 1]: at least 0.07 s in all.
    assert time.monotonic() - started >= 0.07
    assert len(fake.requests) == 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError],
)
async def test_transport_faults_are_retried_then_unavailable(fault: type[httpx.HTTPError]) -> None:
    fake = FakeRegistry(auth=None)

    def fail(request: httpx.Request) -> httpx.Response:
        raise fault("boom", request=request)  # type: ignore[call-arg]

    fake.override = fail
    async with opened(fake.client(retries=2)) as client:
        with pytest.raises(UpstreamUnavailable, match=fault.__name__) as caught:
            await client.head_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, fault)
    assert len(fake.requests) == 3


@pytest.mark.anyio
async def test_unexpected_statuses_are_unavailable_and_4xx_never_retried() -> None:
    for status in [400, 405, 416, 304]:
        fake = FakeRegistry(auth=None)
        fake.override = answering(httpx.Response(status))
        async with opened(fake.client(retries=3)) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get_manifest(REPO, "latest", ACCEPT)
        assert caught.value.status == status
        assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_connection_refused_on_a_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    async with opened(
        DistributionClient(f"http://127.0.0.1:{port}", retries=1, backoff=0)
    ) as client:
        with pytest.raises(UpstreamUnavailable, match="ConnectError"):
            await client.ping()


def test_base_url_must_be_http() -> None:
    for bad in ["ftp://host", "registry.test", "https://"]:
        with pytest.raises(ValueError, match="http"):
            DistributionClient(bad)


def test_error_classes_form_one_hierarchy() -> None:
    for cls in [UpstreamNotFound, UpstreamRateLimited, UpstreamAuthError, UpstreamUnavailable]:
        assert issubclass(cls, UpstreamError)
    assert issubclass(UpstreamContentError, UpstreamError)
    error = UpstreamRateLimited("slow down", retry_after="3")
    assert (error.message, error.status, error.retry_after) == ("slow down", 429, "3")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"120", "120"),
        (b" 7 ", "7"),
        (b"Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
        (b"\xe2\x98\x83", None),  # a snowman: not Latin-1 once decoded
        (b"4\x002", None),
        (b"\xd9\xa4\xd9\xa2", None),  # Arabic-Indic digits: str.isdigit() says yes
        (b"soon", None),
        (b"-5", None),
        (b"1.5", None),
        (b"Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Injected: 1", None),
    ],
)
async def test_retry_after_is_kept_only_when_valid(
    status: int, sent: bytes, kept: str | None
) -> None:
    """Retry-After is delta-seconds or an HTTP-date; anything else is dropped, so that
    whoever passes it on never puts upstream-made bytes in a header (issue 8, item 7)."""
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(status, headers=[(b"retry-after", sent)]))
    async with opened(fake.client(retries=0)) as client:
        with pytest.raises((UpstreamRateLimited, UpstreamUnavailable)) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert isinstance(caught.value, UpstreamRateLimited | UpstreamUnavailable)
    assert caught.value.retry_after == kept
