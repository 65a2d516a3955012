"""`/_mirror/partial`: the partial blobs this replica spools, for the others (`peerwire`).

Only the transport is here: the store checks the signature and reads the spool file.
Registry clients reach the path but not the bytes: every request must be signed with
`cluster.secret`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.store.blobs import BlobStore
from mirror.store.ingest import peerwire

_AUTH = peerwire.AUTH.lower().encode()


def partials_endpoint(blobs: BlobStore) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            answer = peerwire.PeerAnswer(405, b"GET only")
        else:
            auth = next((v for k, v in scope["headers"] if k.lower() == _AUTH), None)
            answer = await blobs.serve_partial(
                scope.get("query_string", b"").decode("latin-1"),
                auth.decode("latin-1") if auth is not None else None,
            )
        headers = [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        content_type = b"application/octet-stream" if answer.status == 200 else b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *headers,
                    (b"content-type", content_type),
                    (b"content-length", str(len(answer.body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        body = b"" if scope["method"] == "HEAD" else answer.body
        await send({"type": "http.response.body", "body": body})

    return app
