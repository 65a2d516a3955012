"""obstore's exceptions as driver errors.

obstore raises ``FileNotFoundError`` for a missing object and ``GenericError`` for nearly
everything else, with object_store's error chain (its Debug form included) as the message.
That chain is the only place the cause is recorded, so the classification reads it: an
HTTP status of 5xx, 429 or 408 (503 SlowDown and Azure's ServerBusy among them), or a
transport failure (refused or reset connection, timeout, DNS) means the service is
unavailable for now - `StorageUnavailable`. Anything else (403, 400, a broken config) is a
plain `StorageDriverError`, since retrying the same call would not help.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)

from mirror.store.driver import PathNotFound, StorageDriverError, StorageUnavailable

# "status: 503," in the Debug form; "status code: 503" in the Display form.
_STATUS = re.compile(r"\bstatus(?: code)?: (\d{3})\b")
_TRANSPORT = re.compile(
    r"error sending request|connection (?:refused|reset|closed)|connect(?:ion)? error"
    r"|timed ?out|operation timed out|dns error|broken pipe|unexpected eof"
    r"|incomplete message|error reading a body|channel closed|SlowDown|ServerBusy",
    re.IGNORECASE,
)
_MESSAGE_LIMIT = 300


def status_of(exc: BaseException) -> int | None:
    """The HTTP status object_store recorded in the error, if any."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def is_unavailable(exc: BaseException) -> bool:
    """True for faults of the service or the network rather than of the request."""
    status = status_of(exc)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return _TRANSPORT.search(str(exc)) is not None


def summary(exc: BaseException) -> str:
    """The first line of an obstore message (the Debug dump after it is for logs)."""
    first = str(exc).split("\n", 1)[0].strip()
    return first[:_MESSAGE_LIMIT] + ("..." if len(first) > _MESSAGE_LIMIT else "")


def translate(exc: BaseException, driver: str, op: str, path: str) -> StorageDriverError:
    """The driver error for an exception raised by obstore during `op` on `path`."""
    if isinstance(exc, StorageDriverError):
        return exc
    if isinstance(exc, FileNotFoundError | NotFoundError):
        return PathNotFound(f"{path} not found", path=path, driver=driver)
    reason = summary(exc)
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        message = f"{driver}: {op} {path} was refused by the storage service: {reason}"
        return StorageDriverError(message, path=path, driver=driver)
    if isinstance(exc, BaseError | OSError) and is_unavailable(exc):
        message = f"{driver}: {op} {path}: storage service unavailable: {reason}"
        return StorageUnavailable(message, path=path, driver=driver)
    return StorageDriverError(f"{driver}: {op} {path} failed: {reason}", path=path, driver=driver)


@contextmanager
def translated(driver: str, op: str, path: str) -> Iterator[None]:
    """Re-raise obstore's exceptions (and stray OSErrors) as driver errors."""
    try:
        yield
    except (BaseError, OSError) as exc:
        raise translate(exc, driver, op, path) from exc
