"""The one table from domain errors to wire codes, statuses and messages.

Handlers raise domain errors (`mirror.errors`); `error_response` renders the OCI error
envelope. The most specific class in an exception's MRO wins. Anything not in the table
is UNKNOWN/500, logged with the request id, and never shown to the client in detail.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from mirror import errors as e
from mirror.proxy.reply import Reply

log = logging.getLogger("mirror.proxy")


@dataclass(frozen=True, slots=True)
class WireCode:
    code: str
    status: int
    message: str


TABLE: dict[type[BaseException], WireCode] = {
    e.BlobUnknown: WireCode("BLOB_UNKNOWN", 404, "blob unknown to registry"),
    e.BlobUploadInvalid: WireCode("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
    e.UploadRangeInvalid: WireCode("BLOB_UPLOAD_INVALID", 416, "blob upload out of order"),
    e.UploadBusy: WireCode("BLOB_UPLOAD_INVALID", 409, "blob upload busy"),
    e.BlobUploadUnknown: WireCode("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"),
    e.DigestInvalid: WireCode("DIGEST_INVALID", 400, "provided digest did not match content"),
    e.ManifestBlobUnknown: WireCode(
        "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"
    ),
    e.ManifestInvalid: WireCode("MANIFEST_INVALID", 400, "manifest invalid"),
    e.ManifestTooLarge: WireCode("MANIFEST_INVALID", 413, "manifest too large"),
    e.ManifestUnknown: WireCode("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
    e.NameInvalid: WireCode("NAME_INVALID", 400, "invalid repository name"),
    e.NameUnknown: WireCode("NAME_UNKNOWN", 404, "repository name not known to registry"),
    e.SizeInvalid: WireCode("SIZE_INVALID", 400, "provided length did not match content length"),
    e.TagInvalid: WireCode("TAG_INVALID", 400, "manifest tag did not match URI"),
    e.PaginationInvalid: WireCode("PAGINATION_NUMBER_INVALID", 400, "invalid number of results"),
    e.RangeNotSatisfiable: WireCode("RANGE_INVALID", 416, "requested range not satisfiable"),
    e.Unauthorized: WireCode("UNAUTHORIZED", 401, "authentication required"),
    e.Denied: WireCode("DENIED", 403, "requested access to the resource is denied"),
    e.Unsupported: WireCode("UNSUPPORTED", 405, "the operation is unsupported"),
    e.ReadOnly: WireCode("UNSUPPORTED", 405, "the registry is in read-only mode"),
    e.TooManyRequests: WireCode("TOOMANYREQUESTS", 429, "too many requests"),
    e.Unavailable: WireCode("UNAVAILABLE", 503, "service unavailable"),
    e.InsufficientStorage: WireCode("UNAVAILABLE", 507, "insufficient storage"),
}
UNKNOWN = WireCode("UNKNOWN", 500, "unknown error")
NOT_FOUND = WireCode("NOT_FOUND", 404, "unknown API endpoint")
METHOD_NOT_ALLOWED = WireCode("UNSUPPORTED", 405, "method not allowed on this endpoint")
# A request the HTTP layer refuses before any route (no OCI code fits; the message says
# what is wrong).
BAD_REQUEST = WireCode("BAD_REQUEST", 400, "bad request")


def lookup(exc: BaseException) -> WireCode:
    for cls in type(exc).__mro__:
        code = TABLE.get(cls)
        if code is not None:
            return code
    return UNKNOWN


def envelope(code: WireCode, message: str | None = None, detail: object = None) -> bytes:
    entry: dict[str, object] = {"code": code.code, "message": message or code.message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


def error_response(exc: BaseException, *, head: bool = False, request_id: str = "") -> Reply:
    """The response for any exception; unknown ones are logged and hidden."""
    code = lookup(exc)
    headers: dict[str, str] = {}
    if code is UNKNOWN:
        log.error("request %s failed", request_id or "-", exc_info=exc)
        body = envelope(code)
    else:
        assert isinstance(exc, e.RegistryError)
        body = envelope(code, exc.message or None, exc.detail)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        if isinstance(exc, e.RangeNotSatisfiable):
            headers["Content-Range"] = f"bytes */{exc.size}"
        if isinstance(exc, e.UploadRangeInvalid):
            headers["Range"] = f"0-{max(exc.size - 1, 0)}"
    return plain_error(code, body, headers, head=head)


def plain_error(
    code: WireCode, body: bytes | None = None, headers: dict[str, str] | None = None, *, head: bool
) -> Reply:
    headers = dict(headers or {})
    body = envelope(code) if body is None else body
    headers["Content-Length"] = str(len(body))
    return Reply(b"" if head else body, code.status, headers, "application/json")
