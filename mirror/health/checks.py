"""The check kinds of registry:2's ``health`` section: storage driver, file, HTTP, TCP.

A check is an async callable that returns when healthy and raises `CheckFailed` (or
any exception: its text is the error reported) when not. It makes one attempt per
call; polling, thresholds and reporting are `mirror.health.registry`'s. Error texts
follow the reference's (``file exists``, ``<uri>: downstream service returned
unexpected status: 503``, ``<addr>: connection failed: ...``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx

from mirror.store.driver import PathNotFound, StorageDriver


class CheckFailed(Exception):
    """A check found its subject unhealthy; the message says why."""


class Check(Protocol):
    async def __call__(self) -> None:
        """Return when healthy; raise (with the reason as the message) when not."""
        ...


class StorageCheck:
    """A ``stat`` of the storage root through the driver, as registry:2 does it.

    `PathNotFound` passes: the backend answered, the root just does not exist yet.
    Any other driver error fails the check.
    """

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def __call__(self) -> None:
        try:
            await self.driver.stat("/")
        except PathNotFound:
            return


class FileCheck:
    """Fails while `path` exists: creating the file takes the registry out of rotation."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    async def __call__(self) -> None:
        try:
            os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise CheckFailed(f"{self.path}: {exc.strerror or exc}") from exc
        raise CheckFailed("file exists")


class HttpCheck:
    """A ``HEAD`` of `uri` that must answer `statuscode` within `timeout` seconds.

    `headers` maps each name to a list of values (registry:2's ``headers``). Redirects
    are not followed: the status of the first answer counts. `transport` is for tests.
    """

    def __init__(
        self,
        uri: str,
        *,
        headers: Mapping[str, Sequence[str]] | None = None,
        statuscode: int = 200,
        timeout: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parsed = httpx.URL(uri)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"health check uri must be http(s)://host/..., not {uri!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        self.uri = uri
        self.statuscode = statuscode
        self.timeout = timeout
        pairs = [(name, value) for name, values in (headers or {}).items() for value in values]
        for name, value in pairs:
            # Refused here rather than failing every attempt with a protocol error.
            if not (name + value).isascii() or any(ch in name + value for ch in "\r\n\0"):
                raise ValueError(f"header {name!r}: names and values must be single-line ASCII")
        self._headers = pairs
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def __call__(self) -> None:
        try:
            response = await self._client.head(self.uri, headers=self._headers)
        except httpx.HTTPError as exc:
            raise CheckFailed(
                f"{self.uri}: error while checking: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code != self.statuscode:
            raise CheckFailed(
                f"{self.uri}: downstream service returned unexpected status: {response.status_code}"
            )

    async def aclose(self) -> None:
        await self._client.aclose()


def split_host_port(addr: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; the port is required, as in registry:2."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"tcp health check address needs host:port, not {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class TcpCheck:
    """A TCP connection to `addr` (``host:port``) made within `timeout` seconds."""

    def __init__(self, addr: str, *, timeout: float = 1.0) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        self.addr = addr
        self.host, self.port = split_host_port(addr)
        self.timeout = timeout

    async def __call__(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise CheckFailed(f"{self.addr}: connection failed: {reason}") from exc
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
