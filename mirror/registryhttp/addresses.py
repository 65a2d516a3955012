"""Which addresses the client may connect to: a guard in the connection layer.

A configured upstream on the public internet may redirect blob requests (to a CDN or an
object store) and name a token realm on another host; both are followed. If it could
name a loopback, link-local or private address, a compromised upstream would get a
read primitive on the mirror's own network (cloud metadata at 169.254.169.254, admin
ports on localhost). So every connection to a host other than the configured one is
checked against the addresses its name resolves to, at connect time - the address
checked is the address dialled, so a DNS answer cannot change in between.

An upstream that is itself on such an address (a registry on the LAN, or on loopback in
tests) may send the client anywhere: the guard then lets everything through. That is
decided by the configured host's own addresses, the first time it is connected to,
unless the caller says.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable

import anyio
import httpcore
import httpx

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class ForbiddenAddress(httpx.HTTPError):
    """A connection to a non-public address that the upstream was not allowed to ask for."""


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable unicast (not loopback, link-local,
    private, shared, reserved, unspecified or multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Wraps the connection pool's network backend: resolves each host itself, checks the
    addresses, and dials a checked one (TLS still verifies the host name, which httpcore
    passes separately)."""

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend, own_host: str, *, internal: bool | None
    ) -> None:
        self._inner = inner
        self._own_host = own_host.strip("[]").lower()
        self._internal = internal  # None: not known until the own host is resolved

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        own = host.strip("[]").lower() == self._own_host
        if own and self._internal is None:
            self._internal = not all(is_public(a) for a in addresses)
        if not own and not self._internal:
            refused = [a for a in addresses if not is_public(a)]
            if refused:
                raise ForbiddenAddress(
                    f"refusing to connect to {host} ({refused[0]}): not a public address, "
                    "and the upstream is not on a private network"
                )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await anyio.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddress("unix sockets are not dialled")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    own_host: str,
    *,
    internal: bool | None,
    limits: httpx.Limits,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, with `GuardedBackend` in its connection pool; `verify` is
    its TLS trust (`mirror.registryhttp.tls`)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, http2=False, trust_env=False, verify=verify)
    pool = transport._pool  # httpx keeps no public handle on its httpcore pool
    pool._network_backend = GuardedBackend(pool._network_backend, own_host, internal=internal)
    return transport
