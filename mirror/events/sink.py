"""Sinks: where delivered events go. The HTTP sink POSTs envelopes as registry:2 does.

A sink makes one attempt per call and reports failure by raising `DeliveryFailed`;
reliability (the queue, retries with backoff) is the delivery loop's, as in the
reference, where the HTTP sink is wrapped by a retrying sink and a queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx

from mirror import __version__
from mirror.events.envelope import EVENTS_MEDIA_TYPE, envelope


class DeliveryFailed(Exception):
    """An attempt to deliver events failed; `status` is the HTTP status when there was
    an answer (0 for a transport failure: refused, reset, timed out, TLS)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Sink(Protocol):
    async def write(self, events: Sequence[bytes]) -> None:
        """Deliver `events` (serialised by `Event.to_bytes`) in one attempt, as one
        envelope; all of them are accepted or none is. Raises `DeliveryFailed`."""
        ...

    async def aclose(self) -> None: ...


class HttpSink:
    """POSTs ``{"events": [...]}`` to `url` with ``Content-Type:
    application/vnd.docker.distribution.events.v2+json`` and the endpoint's `headers`
    (each name with a list of values, as registry:2's ``headers``).

    Any 2xx or 3xx answer is a delivery (redirects are not followed: the reference
    accepts a 3xx as it comes). `timeout` bounds the whole attempt. Proxies and CA
    bundles are not taken from the environment, as for upstreams. `transport` is for
    tests.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, Sequence[str]] | None = None,
        timeout: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"notification endpoint URL must be http(s)://host/..., not {url!r}")
        self.url = url
        self._headers = _request_headers(_merged(headers or {}))
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def write(self, events: Sequence[bytes]) -> None:
        headers = [*self._headers.multi_items(), ("Content-Type", EVENTS_MEDIA_TYPE)]
        try:
            response = await self._client.post(self.url, content=envelope(events), headers=headers)
            await response.aclose()
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"POST {self.url} failed: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 400:
            raise DeliveryFailed(
                f"POST {self.url} answered {response.status_code}", response.status_code
            )

    async def aclose(self) -> None:
        await self._client.aclose()


def _request_headers(pairs: list[tuple[str, str]]) -> httpx.Headers:
    """Configured headers as httpx sends them; ValueError for a name or value that
    cannot go on the wire (non-ASCII, line breaks), rather than failing every POST."""
    for name, value in pairs:
        if not (name + value).isascii() or any(ch in name + value for ch in "\r\n\0"):
            raise ValueError(f"header {name!r}: names and values must be single-line ASCII")
    return httpx.Headers(pairs)


def _merged(headers: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """The request headers: ours, replaced by the endpoint's where it names them."""
    names = {name.lower() for name in headers}
    out = [] if "user-agent" in names else [("User-Agent", f"mirror/{__version__}")]
    for name, values in headers.items():
        if name.lower() == "content-type":
            continue  # the envelope's media type is the protocol's, not configurable
        out.extend((name, value) for value in values)
    return out
