"""Reading the `Authorization` header strictly: Basic credentials and Bearer tokens.

Every malformed header is a `MalformedCredentials` (the controllers turn it into a
challenge); nothing here raises anything else, whatever the bytes. The header's value is
never put into an error message.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from dataclasses import dataclass

# Far above any real token (an x5c chain of three RSA-4096 certificates is ~8 KiB once
# base64url-encoded twice), far below what would make parsing it a cost.
MAX_AUTHORIZATION_LENGTH = 32 * 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# RFC 6750 b64token.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class MalformedCredentials(ValueError):
    """The header is not a well-formed credential of the expected scheme."""


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = ""

    def __repr__(self) -> str:  # a password must never reach a log through a repr()
        return f"BasicCredentials(username={self.username!r}, password=<hidden>)"


def split_scheme(header: str) -> tuple[str, str]:
    """(`scheme` lower-cased, the rest stripped); MalformedCredentials when either is empty
    or the header is too long."""
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise MalformedCredentials(f"Authorization header longer than {MAX_AUTHORIZATION_LENGTH}")
    scheme, _, rest = header.strip().partition(" ")
    rest = rest.strip()
    if not scheme or not rest:
        raise MalformedCredentials("Authorization header without a scheme and credentials")
    return scheme.lower(), rest


def parse_basic(header: str) -> BasicCredentials:
    """Basic credentials (RFC 7617): base64 of `user:password`, UTF-8.

    MalformedCredentials for another scheme, bad base64, text that is not UTF-8, a
    missing colon, an empty user name, or control characters in the user name.
    """
    scheme, encoded = split_scheme(header)
    if scheme != "basic":
        raise MalformedCredentials("expected Basic credentials, got another scheme")
    if len(encoded) % 4 or _BASE64.fullmatch(encoded) is None:
        raise MalformedCredentials("Basic credentials are not valid base64")
    try:
        text = b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials("Basic credentials are not base64 of UTF-8 text") from None
    username, colon, password = text.partition(":")
    if not colon:
        raise MalformedCredentials("Basic credentials without a colon")
    if not username:
        raise MalformedCredentials("Basic credentials with an empty user name")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in username):
        raise MalformedCredentials("Basic credentials with control characters in the user name")
    return BasicCredentials(username, password)


def is_empty_basic(header: str) -> bool:
    """True for Basic credentials of an empty user name and password (`Basic Og==`)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower() == "basic" and rest.strip() == "Og=="


def parse_bearer(header: str) -> str:
    """The token of a Bearer header (RFC 6750 syntax); MalformedCredentials otherwise."""
    scheme, token = split_scheme(header)
    if scheme != "bearer":
        raise MalformedCredentials("expected a Bearer token, got another scheme")
    if _TOKEN68.fullmatch(token) is None:
        raise MalformedCredentials("Bearer token with characters outside RFC 6750's token68")
    return token
