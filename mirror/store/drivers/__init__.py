"""Storage drivers by name; every driver handed out is wrapped in `CheckedDriver`.

Driver modules are imported only when asked for, so a driver's optional dependencies
(object store SDKs) are needed only by deployments that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mirror.store.driver import StorageDriver
from mirror.store.drivers.base import CheckedDriver

_Factory = Callable[[Mapping[str, object]], StorageDriver]


def _filesystem(params: Mapping[str, object]) -> StorageDriver:
    _only(params, "filesystem", {"rootdirectory"})
    root = params.get("rootdirectory")
    if not isinstance(root, str) or not root:
        raise ValueError(
            "storage driver 'filesystem' needs 'rootdirectory', the directory to store "
            f"files in (a non-empty string), got {root!r}"
        )
    from mirror.store.drivers.filesystem import FilesystemDriver

    return FilesystemDriver(root)


def _inmemory(params: Mapping[str, object]) -> StorageDriver:
    _only(params, "inmemory", set())
    from mirror.store.drivers.inmemory import InMemoryDriver

    return InMemoryDriver()


_FACTORIES: dict[str, _Factory] = {"filesystem": _filesystem, "inmemory": _inmemory}


def _only(params: Mapping[str, object], name: str, known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ValueError(
            f"storage driver {name!r} does not take parameter(s) {', '.join(unknown)}; "
            f"it accepts: {accepted}"
        )


def driver_names() -> list[str]:
    """Names accepted by `create_driver`."""
    return sorted(_FACTORIES)


def create_driver(name: str, params: Mapping[str, object]) -> StorageDriver:
    """Build the driver called `name` from its config `params`, wrapped in CheckedDriver.

    Raises ValueError for an unknown name or bad parameters, with a message fit for the
    operator who wrote the config.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(
            f"unknown storage driver {name!r}; available drivers: {', '.join(driver_names())}"
        )
    return CheckedDriver(factory(params))
