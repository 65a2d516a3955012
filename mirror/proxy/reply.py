"""A response whose body is in memory, its headers rendered by `proxy.headers.render`."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive, Scope, Send

from mirror.proxy.headers import render


class Reply:
    """An ASGI response: `status`, `headers` (still editable until it is sent), `body`.

    `media_type` becomes Content-Type unless `headers` has one; Content-Length is the
    body's length unless `headers` has one (a HEAD answer names the length of the body
    it leaves out).
    """

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        names = {name.lower() for name in self.headers}
        if "content-length" not in names and status >= 200 and status not in (204, 304):
            self.headers["Content-Length"] = str(len(body))
        if media_type is not None and "content-type" not in names:
            self.headers["Content-Type"] = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status}
        await send({**start, "headers": render(self.headers)})
        await send({"type": "http.response.body", "body": self.body})
