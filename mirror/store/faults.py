"""Driver errors a client is told about, as domain errors (the store's error boundary).

Most driver errors are the server's business (logged, `UNKNOWN`); a full disk is the
operator's, and the client should hear plainly that its push failed for want of space,
not see an unknown error. The store's write paths run inside `storage_faults`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mirror.errors import InsufficientStorage
from mirror.store.driver import StorageFull


def storage_full() -> InsufficientStorage:
    return InsufficientStorage(
        "the registry's storage is full; nothing can be stored until space is freed"
    )


@contextmanager
def storage_faults() -> Iterator[None]:
    """Raise InsufficientStorage for a StorageFull from inside."""
    try:
        yield
    except StorageFull as exc:
        raise storage_full() from exc
