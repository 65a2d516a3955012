"""Parsing an htpasswd file the way registry:2 reads it, bcrypt entries only.

One `user:hash` per line; blank lines and lines starting with `#` are skipped; a user
given twice keeps the later entry (as registry:2). A line that is not `user:bcrypt-hash`
(MD5 `$apr1$`, `{SHA}`, crypt, plain text, no colon, not UTF-8) is rejected with a log
line naming the file, the line number and the user, and that user cannot log in: the
other users keep working. Hashes and passwords are never logged.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("mirror.auth")

_BCRYPT = re.compile(rb"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")
DEFAULT_COST = 10


@dataclass(frozen=True, slots=True)
class HtpasswdEntries:
    """The users of one version of the file: name -> bcrypt hash."""

    hashes: dict[str, bytes] = field(default_factory=dict)

    @property
    def typical_cost(self) -> int:
        """The most common bcrypt cost in the file (the highest on a tie): what a dummy
        check for an unknown user must cost, so that timing does not tell who exists."""
        costs = Counter(int(h[4:6]) for h in self.hashes.values())
        if not costs:
            return DEFAULT_COST
        return max(costs, key=lambda cost: (costs[cost], cost))


def _kind(hashed: bytes) -> str:
    if hashed.startswith(b"$apr1$"):
        return "an MD5 ($apr1$)"
    if hashed.startswith(b"{SHA}"):
        return "a SHA-1 ({SHA})"
    if hashed.startswith((b"$1$", b"$5$", b"$6$")):
        return "a crypt(3)"
    if hashed.startswith(b"$2"):
        return "a malformed bcrypt"
    return "a plain-text or crypt"


def parse_htpasswd(content: bytes, *, source: str) -> HtpasswdEntries:
    """The valid bcrypt entries of `content`; other lines are logged and skipped."""
    hashes: dict[str, bytes] = {}
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        raw_user, colon, hashed = line.partition(b":")
        if not colon or not raw_user:
            log.error("htpasswd %s line %d: not 'user:hash'; line ignored", source, number)
            continue
        try:
            user = raw_user.decode("utf-8")
        except UnicodeDecodeError:
            log.error("htpasswd %s line %d: user name is not UTF-8; line ignored", source, number)
            continue
        if _BCRYPT.fullmatch(hashed) is None:
            log.error(
                "htpasswd %s line %d: user %r has %s hash; only bcrypt (htpasswd -B) is "
                "supported, so this user cannot log in",
                source,
                number,
                user,
                _kind(hashed),
            )
            continue
        if user in hashes:
            log.warning(
                "htpasswd %s line %d: user %r given again; this entry wins", source, number, user
            )
        hashes[user] = hashed
    return HtpasswdEntries(hashes)
