"""Partial blobs spooled by another replica, read over its internal route (`peerwire`).

A follower whose host does not have the spool file of a download asks the replica the
locator names for it: one request per read, and progress polls that the holder holds
until more bytes are written. Every request is bounded (connect, read and pool timeouts),
and whatever goes wrong - the holder unreachable, a refusal (another secret), an answer
that makes no sense - is `PartialGone`, logged once per reader: the follower then waits
for the commit, as it would without a holder to stream from. 410 means the spool file is
gone; the store, shared by both replicas, says whether the blob was committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import httpx

from mirror import requestid
from mirror.registryhttp.headers import ascii_int
from mirror.store.driver import PathNotFound, StorageDriver, StorageDriverError, stat_file
from mirror.store.ingest import peerwire
from mirror.store.ingest.staging import PartialGone, PartialProgress, PartialState, cut

log = logging.getLogger("mirror.store")

CONNECT_TIMEOUT: Final = 2.0
READ_TIMEOUT: Final = peerwire.WAIT + 4.0


@dataclass(frozen=True, slots=True)
class Cluster:
    """This replica's advertised URL and the secret every replica shares."""

    advertise: str
    secret: str


class Peers:
    """The requests of this process to other replicas: one pooled client, made on first
    use; `transport` replaces the network (tests)."""

    def __init__(self, cluster: Cluster, *, transport: httpx.AsyncBaseTransport | None = None):
        self.cluster = cluster
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def reaches(self, holder: str) -> bool:
        """Whether `holder` (from a locator) is another replica's URL."""
        return holder != self.cluster.advertise and holder.startswith(("http://", "https://"))

    async def get(self, holder: str, name: str, params: dict[str, int]) -> httpx.Response:
        """GET the partial `name` from `holder`; raises httpx.HTTPError."""
        if self._client is None:
            timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, pool=CONNECT_TIMEOUT)
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=timeout, trust_env=False
            )
        headers = {peerwire.AUTH: peerwire.sign(self.cluster.secret, name)}
        current = requestid.current()
        if current is not None:
            headers[requestid.HEADER] = current
        query = {"name": name, **{key: str(value) for key, value in params.items()}}
        return await self._client.get(holder + peerwire.PATH, params=query, headers=headers)

    async def open(self, holder: str, name: str, driver: StorageDriver, path: str) -> RemoteReader:
        """A reader of `holder`'s partial `name` of `path`, once the holder says it has
        it; PartialGone otherwise."""
        reader = RemoteReader(self, holder, name, driver, path)
        if await reader.ask({"offset": 0, "size": 0}) is None:
            raise PartialGone(f"holder {holder} has no partial {name} (any more)")
        return reader

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class RemoteReader:
    """`PartialReader` of another replica's spool file (see the module docstring)."""

    __slots__ = (
        "_available",
        "_closed",
        "_driver",
        "_failed",
        "_holder",
        "_name",
        "_path",
        "_peers",
    )

    def __init__(
        self, peers: Peers, holder: str, name: str, driver: StorageDriver, path: str
    ) -> None:
        self._peers = peers
        self._holder = holder
        self._name = name
        self._driver = driver
        self._path = path
        self._available = 0
        self._closed = False
        self._failed: str | None = None  # why the holder cannot be read from

    async def read(self, offset: int, size: int, piece: int) -> list[bytes]:
        size = min(size, peerwire.MAX_READ)
        response = await self.ask({"offset": offset, "size": size})
        if response is None:
            raise PartialGone(f"holder {self._holder} has no partial {self._name} (any more)")
        if len(response.content) > size:
            raise self._fail(f"answered {len(response.content)} bytes for {size}")
        return cut(response.content, piece)

    async def progress(self) -> PartialProgress:
        if await self.ask({"offset": 0, "size": 0, "after": self._available}) is None:
            return PartialProgress(self._available, await self._settled())
        return PartialProgress(self._available, PartialState.WRITING)

    async def ask(self, params: dict[str, int]) -> httpx.Response | None:
        """The holder's 200 answer, or None for its 410; PartialGone for anything else."""
        if self._closed:
            raise StorageDriverError("the partial reader is closed")
        if self._failed is not None:
            raise PartialGone(self._failed)
        try:
            response = await self._peers.get(self._holder, self._name, params)
        except httpx.HTTPError as exc:
            raise self._fail(f"is unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code == 410:
            return None
        if response.status_code != 200:
            raise self._fail(f"answered {response.status_code}")
        available = ascii_int(response.headers.get(peerwire.AVAILABLE))
        if available is None:
            raise self._fail(f"sent no {peerwire.AVAILABLE}")
        self._available = max(self._available, available)
        return response

    def _fail(self, why: str) -> PartialGone:
        """Give up on the holder (logged once): every later call is PartialGone."""
        self._failed = f"holder {self._holder} {why}"
        log.warning("the download's %s; waiting for its commit instead", self._failed)
        return PartialGone(self._failed)

    async def _settled(self) -> PartialState:
        try:
            await stat_file(self._driver, self._path)
        except PathNotFound:
            return PartialState.GONE
        return PartialState.COMMITTED

    async def aclose(self) -> None:
        self._closed = True
