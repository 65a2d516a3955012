"""The 401 an access controller raises: what the response needs, nothing more.

A `Challenge` is an `Unauthorized` domain error, so the front end's one error table
renders it as `UNAUTHORIZED`/401 with the spec's envelope; it adds the
`WWW-Authenticate` value (`headers`) and, as `detail`, registry:2's list of the accesses
that were missing. `reason` says why for the server log; it never holds a credential.
"""

from __future__ import annotations

from collections.abc import Sequence

from mirror.auth.access import Access
from mirror.errors import Unauthorized

# Client-facing messages, one per kind of failure; the precise cause goes to `reason`.
AUTHENTICATION_REQUIRED = "authentication required"
INVALID_CREDENTIALS = "invalid credentials"
INVALID_TOKEN = "invalid token"
INSUFFICIENT_ACCESS = "access to the requested resource is not authorized"


class Challenge(Unauthorized):
    """Authentication or authorisation failed; answer 401 with `headers`."""

    def __init__(
        self,
        message: str,
        *,
        www_authenticate: str,
        missing: Sequence[Access] = (),
        reason: str = "",
    ) -> None:
        super().__init__(message, detail=[access.detail() for access in missing] or None)
        self.www_authenticate = www_authenticate
        self.missing = tuple(missing)
        self.reason = reason or message

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the 401 must carry."""
        return {"WWW-Authenticate": self.www_authenticate}


def quoted(value: str) -> str:
    """`value` as an RFC 9110 quoted-string that is always a valid latin-1 header value.

    Control characters are dropped and characters outside latin-1 become `?`: a name
    taken from the request line must never break the header or the response.
    """
    safe = []
    for char in value:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            continue
        if code > 0xFF:
            safe.append("?")
        elif char in '"\\':
            safe.append("\\" + char)
        else:
            safe.append(char)
    return '"' + "".join(safe) + '"'


def auth_params(scheme: str, params: Sequence[tuple[str, str]]) -> str:
    """`Scheme k="v",k2="v2"`; parameters with empty values are left out."""
    rendered = ",".join(f"{key}={quoted(value)}" for key, value in params if value)
    return f"{scheme} {rendered}" if rendered else scheme
