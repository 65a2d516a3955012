"""Hash states that outlive a request: an upload's running digest, saved after each chunk.

hashlib's objects cannot be serialised, so an upload whose chunks arrive at different
processes or replicas would have to read all its data again at commit. registry:2 keeps
its (Go, resumable) hash state per offset in the session; so does this, with rehashes
(RustCrypto's SHA-2, whose state is serialisable and as fast as OpenSSL's here). A state
is stored with a format tag; one that cannot be read back (another library version, a
damaged object) is simply not used, and the commit hashes the data again.
"""

from __future__ import annotations

from typing import Any, Final

from mirror.digests import Digest

_FORMAT: Final = b"rehashes-0.3:"


def _kind(algorithm: str) -> Any | None:
    try:
        import rehashes
    except ImportError:  # optional: without it every commit re-reads the data
        return None
    return {"sha256": rehashes.PySha256, "sha512": rehashes.PySha512}.get(algorithm)


class ResumableHasher:
    """A running digest (with its byte count) whose state can be saved and restored."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str, state: Any, size: int) -> None:
        self.algorithm = algorithm
        self._hash = state
        self.size = size

    @classmethod
    def start(cls, algorithm: str = "sha256") -> ResumableHasher | None:
        """A fresh hasher, or None when `algorithm` has no resumable implementation."""
        kind = _kind(algorithm)
        return None if kind is None else cls(algorithm, kind(), 0)

    @classmethod
    def restore(cls, algorithm: str, size: int, saved: bytes) -> ResumableHasher | None:
        """The hasher `save()` produced after `size` bytes, or None if it cannot be read."""
        kind = _kind(algorithm)
        if kind is None or not saved.startswith(_FORMAT):
            return None
        try:
            state = kind.deserialize(saved[len(_FORMAT) :])
        except Exception:  # any failure means "not usable": the data is hashed again
            return None
        return cls(algorithm, state, size)

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def save(self) -> bytes:
        return _FORMAT + bytes(self._hash.serialize())

    def digest(self) -> Digest:
        """The digest so far (the state itself is left as it is)."""
        copy = type(self._hash).deserialize(self._hash.serialize())
        return Digest(self.algorithm, str(copy.finalize()))
