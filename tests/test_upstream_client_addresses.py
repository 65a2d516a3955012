"""The connection guard: redirect targets and token realms only on public addresses,
unless the upstream itself is on a private one. Real servers on loopback."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirror.digests import Digest
from mirror.registryhttp.addresses import is_public
from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.errors import UpstreamAuthError, UpstreamUnavailable
from tests.support.asgiserver import serving
from tests.support.fakeregistry import ACCEPT, opened

pytestmark = pytest.mark.anyio

DIGEST = Digest.of(b"a layer")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("127.1.2.3", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


def internal_app(seen: list[str]) -> Starlette:
    async def anything(request: Request) -> Response:
        seen.append(request.url.path)
        return Response(b"secret", headers={"Content-Length": "6"})

    return Starlette(routes=[Route("/{path:path}", anything)])


def upstream_app(internal: str) -> Starlette:
    async def blob(request: Request) -> Response:
        return Response(status_code=307, headers={"Location": f"{internal}/latest/meta-data"})

    async def manifest(request: Request) -> Response:
        challenge = f'Bearer realm="{internal}/token",service="x"'
        return Response(status_code=401, headers={"WWW-Authenticate": challenge})

    return Starlette(
        routes=[
            Route("/v2/{name:path}/blobs/{digest}", blob),
            Route("/v2/{name:path}/manifests/{reference}", manifest),
        ]
    )


async def test_an_upstream_cannot_send_the_client_to_private_addresses() -> None:
    """A compromised public upstream must not get a read primitive on the mirror's
    network (issue 8, low). `localhost` stands for any name of a private address."""
    seen: list[str] = []
    async with serving(internal_app(seen)) as internal:
        target = internal.replace("127.0.0.1", "localhost")
        async with serving(upstream_app(target)) as upstream:
            public = DistributionClient(upstream, allow_private_targets=False, backoff=0)
            async with opened(public) as client:
                with pytest.raises(UpstreamUnavailable, match="not a public address"):
                    await client.open_blob("library/app", DIGEST)
                with pytest.raises(UpstreamAuthError, match="not a public address"):
                    await client.get_manifest("library/app", "v1", ACCEPT)
            assert seen == []
            # An upstream that is itself on loopback (or a LAN) may send us there.
            async with (
                opened(DistributionClient(upstream, backoff=0)) as client,
                await client.open_blob("library/app", DIGEST, verify=False) as blob,
            ):
                assert b"".join([c async for c in blob]) == b"secret"
            assert seen == ["/latest/meta-data"]
