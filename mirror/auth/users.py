"""Checking a user's password against an htpasswd file, cheaply after the first time.

bcrypt costs milliseconds by design, and a registry sees every layer of a pull with the
same credentials, so a successful check is remembered: in a bounded LRU keyed by an
HMAC of (user, password) under a key that lives only in this process's memory (never
the password, and not a fast hash an attacker could test guesses against), dropped
whenever the file changes. Concurrent checks of the same credentials share one bcrypt
run. Failures are never remembered. bcrypt runs in a worker thread, so a login does not
stall the event loop.

Unknown users are checked against a dummy hash of the file's typical cost, so a reply is
no faster for a name that does not exist. As bcrypt itself (and registry:2) does, only
the first 72 bytes of a password count.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
from collections import OrderedDict
from pathlib import Path

import bcrypt

from mirror.auth.htpasswd_file import HtpasswdEntries, parse_htpasswd
from mirror.auth.watched import WatchedFile
from mirror.coordination.singleflight import SingleFlight

log = logging.getLogger("mirror.auth")

DEFAULT_CACHE_SIZE = 1024
_BCRYPT_MAX_PASSWORD = 72


class HtpasswdUsers:
    """The users of an htpasswd file, re-read when it changes.

    The file must exist when this is built (FileNotFoundError otherwise: registry:2
    would create one with a random password printed to its log, which we do not do). If
    it disappears or becomes unreadable later, nobody can log in until it is back.
    """

    def __init__(self, path: str | os.PathLike[str], *, cache_size: int = DEFAULT_CACHE_SIZE):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"htpasswd file {self.path} does not exist")
        self._cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._flights = SingleFlight()
        self._dummies: dict[int, bytes] = {}
        self.generation = 0
        self.bcrypt_checks = 0
        self._file = WatchedFile(
            self.path,
            lambda content: parse_htpasswd(content, source=str(self.path)),
            lambda _error, _previous: HtpasswdEntries(),
            what="htpasswd file",
            on_change=self._changed,
        )
        self._file.load()

    def entries(self) -> HtpasswdEntries:
        """The current entries (one `stat` to notice a change)."""
        return self._file.load()

    def entry(self, user: str) -> bytes | None:
        """`user`'s current bcrypt hash, or None when there is no such user."""
        return self.entries().hashes.get(user)

    async def verify(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s; never raises for any input."""
        entries = self.entries()
        generation = self.generation
        key = hmac.new(self._key, _credentials(user, password), hashlib.sha256).digest()
        if key in self._verified:
            self._verified.move_to_end(key)
            return True

        async def check() -> bool:
            self.bcrypt_checks += 1
            return await asyncio.to_thread(self._check, entries, user, password)

        ok = await self._flights.run((generation, key), check)
        if ok and generation == self.generation:
            self._verified[key] = None
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return ok

    def _check(self, entries: HtpasswdEntries, user: str, password: str) -> bool:
        secret = password.encode("utf-8", "surrogatepass")[:_BCRYPT_MAX_PASSWORD]
        hashed = entries.hashes.get(user)
        try:
            if hashed is None:
                bcrypt.checkpw(secret, self._dummy(entries.typical_cost))
                return False
            return bcrypt.checkpw(secret, hashed)
        except ValueError:
            log.error("htpasswd %s: the entry of user %r cannot be checked", self.path, user)
            return False

    def _dummy(self, cost: int) -> bytes:
        dummy = self._dummies.get(cost)
        if dummy is None:
            dummy = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(), bcrypt.gensalt(cost))
            self._dummies[cost] = dummy
        return dummy

    def _changed(self, entries: HtpasswdEntries) -> None:
        self.generation += 1
        self._verified.clear()
        log.info("htpasswd %s loaded: %d users", self.path, len(entries.hashes))


def _credentials(user: str, password: str) -> bytes:
    # Length-prefixed so that no (user, password) pair can collide with another.
    raw_user = user.encode("utf-8", "surrogatepass")
    return len(raw_user).to_bytes(4, "big") + raw_user + password.encode("utf-8", "surrogatepass")
