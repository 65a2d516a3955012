"""The id of the request being served, for every log line and upstream request it causes.

The HTTP edge binds it (`bind`) for the duration of a request; asyncio tasks started
meanwhile (a download serving the request, say) inherit it with the context, so their log
lines carry the id of the request that caused them. A client may send its own id
(``X-Request-Id``): it is taken when it is `sane`, else a new one is made.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar, Token
from typing import Final

HEADER: Final = "X-Request-Id"
# Printable, no spaces or quotes, bounded: safe in a header, a log line and a JSON string.
_SANE: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_current: ContextVar[str | None] = ContextVar("mirror_request_id", default=None)


def sane(value: str | None) -> str | None:
    """`value` when it may serve as a request id, else None."""
    if value is not None and _SANE.fullmatch(value):
        return value
    return None


def new() -> str:
    """A random (version 4) UUID's text, as `str(uuid.uuid4())` writes it, at a tenth of
    its cost: this runs for every request without an id of its own. An id only has to be
    unique, not unguessable, so it comes from `random` (which each forked worker
    reseeds) rather than the kernel's `getrandom`."""
    n = random.getrandbits(128) & ~(0xF << 76 | 0x3 << 62) | (0x4 << 76 | 0x2 << 62)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def current() -> str | None:
    """The id of the request this code runs for, if any."""
    return _current.get()


def bind(request_id: str) -> Token[str | None]:
    """Make `request_id` current until `unbind(token)`."""
    return _current.set(request_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)
