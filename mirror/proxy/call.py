"""What a handler gets: the request, its route parameters, and the services behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import Request
from starlette.types import ASGIApp

from mirror.errors import ManifestTooLarge
from mirror.proxy.inputs import plain_number
from mirror.proxy.reply import Reply
from mirror.store.store import Store
from mirror.store.view import Resolved, Resolver


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    resolver: Resolver
    base_url: str = ""  # http.host: absolute Location headers when set
    chunk_min_length: int = 1024 * 1024
    # (source, bytes, stored repository name)
    on_blob_sent: Callable[[str, int, str], None] | None = None


@dataclass(slots=True)
class Call:
    request: Request
    params: dict[str, str]
    services: Services
    head: bool
    headers: dict[str, str] = field(default_factory=dict)
    _resolved: Resolved | None = None

    @property
    def name(self) -> str:
        """The repository name as the client wrote it (used in Location headers)."""
        return self.params["name"]

    def resolve(self) -> Resolved:
        if self._resolved is None:
            self._resolved = self.services.resolver.resolve(
                self.name, self.request.query_params.get("ns")
            )
            self.headers.update(self._resolved.headers)
        return self._resolved

    def warn(self, warning: str | None) -> None:
        if warning:
            text = warning.replace('"', "'")
            self.headers["Warning"] = f'299 - "{text}"'

    def url(self, path: str) -> str:
        """A Location for `path`, keeping the client's `ns` so follow-ups route the same."""
        ns = self.request.query_params.get("ns")
        if ns:
            path = f"{path}{'&' if '?' in path else '?'}ns={quote(ns, safe='')}"
        return f"{self.services.base_url}{path}"

    def response(
        self,
        body: bytes = b"",
        status: int = 200,
        media_type: str | None = None,
        *,
        length: int | None = None,
    ) -> Reply:
        """A response with the collected headers; `length` overrides Content-Length (HEAD)."""
        headers = dict(self.headers)
        headers["Content-Length"] = str(len(body) if length is None else length)
        return Reply(b"" if self.head else body, status, headers, media_type)

    async def read_body(self, limit: int) -> bytes:
        """The whole request body; ManifestTooLarge past `limit` bytes."""
        declared = plain_number(self.request.headers.get("content-length") or "")
        if declared is not None and declared > limit:
            raise ManifestTooLarge(f"body larger than {limit} bytes")
        parts: list[bytes] = []
        total = 0
        async for chunk in self.request.stream():
            total += len(chunk)
            if total > limit:
                raise ManifestTooLarge(f"body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def body(self) -> AsyncIterator[bytes]:
        return self.request.stream()


Handler = Callable[[Call], Awaitable[ASGIApp]]
