"""The internal route by which a replica serves its spooled partials to the others.

``GET /_mirror/partial?name=<spool file>&offset=<n>&size=<n>[&after=<n>]`` on the
holder's advertised URL (`cluster.advertise`) answers 200 with up to `size` bytes of the
spool file at `offset` (fewer, or none, when fewer are written yet) and the bytes written
so far in ``Mirror-Partial-Available``; with `after` and `size=0` it is a progress poll
that the holder keeps for up to `WAIT` seconds until more than `after` bytes are there.
A spool file that is no longer there (committed, cancelled, never here) is 410 Gone: its
follower then reads the stored blob, or waits for the commit.

Every request carries ``Mirror-Peer-Auth: <expiry>:<hmac>``, an HMAC-SHA256 under the
shared `cluster.secret` of the spool file's name and the expiry (unix seconds, at most
`MAX_VALIDITY` ahead), so the secret never crosses the wire and registry clients, which
do not have it, are refused: 401 without the header, 403 with a wrong or stale one.

Both sides are here (the answer over a spool directory, and what a follower signs), so
the wire has one definition; `proxy/partials_api.py` only carries the answer over ASGI.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs

from anyio import to_thread

from mirror.store.ingest.files import path_exists

PATH: Final = "/_mirror/partial"
AUTH: Final = "Mirror-Peer-Auth"
AVAILABLE: Final = "Mirror-Partial-Available"
SUFFIX: Final = ".part"
NAME: Final = re.compile(r"[0-9a-f]{32}-[0-9a-f]{32}")
MAX_READ: Final = 4 * 1024 * 1024  # bytes one request may ask for
WAIT: Final = 1.0  # how long a progress poll waits for more bytes
VALIDITY: Final = 60  # seconds a follower's signature is good for
MAX_VALIDITY: Final = 300  # later expiries are refused (a clock far ahead, or a replay)
_POLL: Final = 0.05
_DIGITS: Final = re.compile(r"[0-9]{1,18}")


def sign(secret: str, name: str, now: float | None = None) -> str:
    """The `AUTH` value for a request about the spool file `name`."""
    expiry = int(now if now is not None else time.time()) + VALIDITY
    return f"{expiry}:{_mac(secret, name, expiry)}"


def _mac(secret: str, name: str, expiry: int) -> str:
    message = f"{name}\n{expiry}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(secret: str, name: str, value: str | None, now: float | None = None) -> int:
    """200 when `value` signs a request about `name`, else 401 (none) or 403 (wrong)."""
    if not value:
        return 401
    expiry_text, _, mac = value.partition(":")
    if not _DIGITS.fullmatch(expiry_text):
        return 403
    expiry, clock = int(expiry_text), now if now is not None else time.time()
    if not clock <= expiry <= clock + MAX_VALIDITY:
        return 403
    return 200 if hmac.compare_digest(mac, _mac(secret, name, expiry)) else 403


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


NOT_SERVED: Final = PeerAnswer(404, b"this replica serves no partials (no cluster.advertise)")


@dataclass(frozen=True, slots=True)
class _Asked:
    name: str
    offset: int
    size: int
    after: int | None


def _asked(query: str) -> _Asked | None:
    """The request's parameters, or None when one is missing, repeated or not plain."""
    values = parse_qs(query, keep_blank_values=True)

    def one(key: str) -> str | None:
        found = values.get(key, [])
        return found[0] if len(found) == 1 else None

    def number(key: str) -> int | None:
        text = one(key)
        return int(text) if text is not None and _DIGITS.fullmatch(text) else None

    name, offset, size, after = one("name"), number("offset"), number("size"), number("after")
    if name is None or not NAME.fullmatch(name) or offset is None or size is None:
        return None
    if size > MAX_READ or (after is None and "after" in values):
        return None
    return _Asked(name, offset, size, after)


async def answer(directory: str, secret: str, query: str, auth: str | None) -> PeerAnswer:
    """The answer of the spool `directory` to a peer's request (see the module docstring)."""
    asked = _asked(query)
    if asked is None:
        return PeerAnswer(400, b"expected name, offset, size (and after) of a partial")
    status = signed(secret, asked.name, auth)
    if status != 200:
        return PeerAnswer(status, b"not signed with this cluster's secret")
    spool = os.path.join(directory, asked.name + SUFFIX)
    try:
        fd = os.open(spool, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return PeerAnswer(410, b"no such partial (committed or cancelled)")
    try:
        available = os.fstat(fd).st_size
        if asked.after is not None:
            available = await _grown(fd, asked.after, spool)
        body = b""
        if asked.size and asked.offset < available:
            size = min(asked.size, available - asked.offset)
            body = await to_thread.run_sync(os.pread, fd, size, asked.offset)
        return PeerAnswer(200, body, {AVAILABLE: str(available)})
    finally:
        os.close(fd)


async def _grown(fd: int, after: int, spool: str) -> int:
    """The spool file's size once it is more than `after`, its writer let go of it (it is
    removed), or `WAIT` has passed."""
    deadline = time.monotonic() + WAIT
    while True:
        size = os.fstat(fd).st_size
        if size > after or time.monotonic() >= deadline or not path_exists(spool):
            return size
        await asyncio.sleep(_POLL)
