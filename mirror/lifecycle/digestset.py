"""Compact keys for digests, and a set of them for the mark phase.

A key is one byte naming the algorithm followed by the raw digest bytes (33 bytes for
sha256), a third of the size of the hex string and far smaller than a `Digest` object,
so the marks of a store with a million blobs fit in about 100 MiB and those of 50,000
in a few.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mirror.digests import Digest

_CODES = {"sha256": b"\x01", "sha512": b"\x02"}
_NAMES = {code[0]: name for name, code in _CODES.items()}
_HEX = {
    "sha256": re.compile(r"[0-9a-f]{64}").fullmatch,
    "sha512": re.compile(r"[0-9a-f]{128}").fullmatch,
}


def key_from(algorithm: str, hex_: str) -> bytes | None:
    """The key of ``algorithm:hex_``, or None when that is not a valid digest.

    The same rules as `Digest.parse` (sha256 or sha512, lower-case hex of the right
    length), checked with one match instead of a parse: the collector does this for
    every directory name and every reference in the store.
    """
    match = _HEX.get(algorithm)
    if match is None or match(hex_) is None:
        return None
    return _CODES[algorithm] + bytes.fromhex(hex_)


def key_of_text(value: str) -> bytes | None:
    """The key of a digest string such as ``sha256:ab12...``, or None when invalid."""
    algorithm, _, hex_ = value.partition(":")
    return key_from(algorithm, hex_)


def key_of(digest: Digest) -> bytes:
    """The compact key of `digest` (a validated digest, so its hex is well formed)."""
    return _CODES[digest.algorithm] + bytes.fromhex(digest.hex)


def digest_of(key: bytes) -> Digest:
    """The digest a key stands for."""
    return Digest(_NAMES[key[0]], key[1:].hex())


class DigestSet:
    """A set of digests held as compact keys."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._keys: set[bytes] = set(keys)

    def add_key(self, key: bytes) -> bool:
        """Add a key; True when it was not there before."""
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def add(self, digest: Digest) -> bool:
        return self.add_key(key_of(digest))

    def has_key(self, key: bytes) -> bool:
        return key in self._keys

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, Digest) and key_of(digest) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Digest]:
        return (digest_of(key) for key in self._keys)
