"""Digest parsing and incremental hashing.

A digest is ``algorithm:hex``. Only the algorithms the OCI image spec registers are accepted
(sha256 and sha512); anything else, malformed or of an unknown algorithm, is `DigestInvalid`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from mirror.errors import DigestInvalid, Unsupported

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
# The grammar of the image spec: algorithm-component(+separator)...:encoded
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated content digest; `str(d)` is the canonical ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse ``algorithm:hex``; raise DigestInvalid (also for unknown algorithms)."""
        if not _GRAMMAR.fullmatch(value):
            raise DigestInvalid(f"invalid digest {value[:150]!r}")
        algorithm, _, encoded = value.partition(":")
        expected = _HEX_LENGTH.get(algorithm)
        if expected is None:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm[:32]!r}")
        if len(encoded) != expected or not _HEX.fullmatch(encoded):
            raise DigestInvalid(f"invalid {algorithm} digest {value[:150]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of `data`."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def is_digest(reference: str) -> bool:
    """True when a manifest reference looks like a digest rather than a tag."""
    return ":" in reference


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


class DigestHasher:
    """Incremental hashing that also counts bytes."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTH:
            raise Unsupported(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash: Hasher = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())
