"""What the object-store drivers share before any SDK is imported: their transport limits
(`Tuning`), the reading of registry:2-style parameters (`Params`), and the key prefix
rules (`root_prefix`).

Nothing here imports obstore, so the configuration can validate a driver's parameters
(and a deployment without the SDK can print a clear message) without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mirror.durations import parse_duration

MIB = 1024 * 1024
GIB = 1024 * MIB

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")


class ParameterError(ValueError):
    """A bad parameter: `key` (dotted below the driver's section) and what is wrong."""

    def __init__(self, driver: str, key: str, detail: str) -> None:
        super().__init__(f"storage driver {driver!r}: parameter {key!r} {detail}")
        self.key = key
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Tuning:
    """Transport limits of an object-store driver (constructor arguments, not registry:2
    parameters). Every request is bounded, so an unreachable store turns into
    `StorageUnavailable` after at most about `retry_timeout` plus one `request_timeout`.

    `request_timeout` bounds one whole request other than a streaming read (a HEAD, a list
    page, one part of a multipart upload); `stall_timeout` bounds a streaming read that
    receives nothing, `stream_timeout` a whole streaming read. Retries (5xx, 429, 503
    SlowDown, connection errors, timeouts of idempotent requests) back off exponentially
    from `backoff_initial` to `backoff_max`, at most `max_retries` times and not after
    `retry_timeout`. A writer keeps at most `part_concurrency` parts in flight, so its
    memory is bounded by (`part_concurrency` + 1) x the part size. Signed URLs live
    `redirect_expiry` seconds (registry:2: 20 minutes).
    """

    connect_timeout: float = 5.0
    request_timeout: float = 120.0
    stall_timeout: float = 30.0
    stream_timeout: float = 6 * 3600.0
    max_retries: int = 5
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    retry_timeout: float = 30.0
    part_concurrency: int = 4
    redirect_expiry: float = 1200.0


class Params:
    """Typed reads of one driver's parameter mapping, with messages naming the key.

    Values may come from YAML (bool, int) or from ``REGISTRY_STORAGE_<DRIVER>_*``
    environment overrides (strings), so "true" and "10485760" are accepted too.
    Unknown keys are refused at construction.
    """

    def __init__(self, driver: str, params: Mapping[str, object], known: Iterable[str]) -> None:
        self.driver = driver
        self._params = params
        accepted = set(known)
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise ValueError(
                f"storage driver {driver!r} does not take parameter(s) {', '.join(unknown)}; "
                f"it accepts: {', '.join(sorted(accepted))}"
            )

    def error(self, key: str, message: str) -> ParameterError:
        return ParameterError(self.driver, key, message)

    def has(self, key: str) -> bool:
        return self._params.get(key) is not None

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._params.get(key)
        if value is None or value == "":
            if required:
                raise self.error(key, "is required (a non-empty string)")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.error(key, f"must be true or false, got {value!r}")

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        whole = (
            (isinstance(value, int) and not isinstance(value, bool))
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value) is not None)
        )
        if not whole:
            raise self.error(key, f"must be an integer, got {value!r}")
        number = int(value) if isinstance(value, int | float) else int(str(value))
        if not minimum <= number <= maximum:
            raise self.error(key, f"must be between {minimum} and {maximum}, got {number}")
        return number

    def duration(self, key: str, default: float) -> float:
        value = self._params.get(key)
        if value is None or value == "":
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, f"must be a duration such as 100ms or 2s ({exc})") from None

    def mapping(self, key: str) -> Mapping[str, object] | None:
        value = self._params.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.error(key, f"must be a mapping, got {value!r}")
        return value

    def refuse(self, key: str, why: str, *, unless: object = None) -> None:
        """Refuse `key` when it is set (to anything but `unless`), saying `why`."""
        value = self._params.get(key)
        if value is None or value == "" or (unless is not None and value == unless):
            return
        raise self.error(key, f"is not supported: {why}")


def root_prefix(params: Params, key: str = "rootdirectory") -> str:
    """The key prefix of `rootdirectory`, as registry:2 maps it: surrounding slashes
    dropped, so "/a/b/" and "a/b" both put `/docker/...` at ``a/b/docker/...``; "" or
    "/" is the bucket's root."""
    raw = params.string(key) or ""
    prefix = raw.strip("/")
    if prefix and not all(
        _COMPONENT.fullmatch(part) and part not in (".", "..") for part in prefix.split("/")
    ):
        raise params.error(
            key,
            "must be slash-separated names of letters, digits, '.', '_' and '-' "
            f"(no empty, '.' or '..' parts), got {raw!r}",
        )
    return prefix
