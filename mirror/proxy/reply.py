"""A response whose body is in memory, its headers rendered by `proxy.headers.render`."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive, Scope, Send

from mirror.proxy.headers import render


class Reply:
    """An ASGI response: `status`, `headers` (still editable until it is sent), `body`.

    `media_type` becomes Content-Type unless `headers` has one; Content-Length is the
    body's length unless `headers` has one (a HEAD answer names the length of the body
    it leaves out). Both are looked up as spelled here ("Content-Type").
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
        # Names as this code spells them; `render` merges other spellings of a name.
        if "Content-Length" not in self.headers and status >= 200 and status not in (204, 304):
            self.headers["Content-Length"] = str(len(body))
        if media_type is not None and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status}
        await send({**start, "headers": render(self.headers)})
        await send({"type": "http.response.body", "body": self.body})
