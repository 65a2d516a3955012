"""Storage drivers by name; every driver handed out is wrapped in `CheckedDriver`.

Driver modules are imported only when asked for, so a driver's optional dependencies
(obstore, for s3 and azure) are needed only by deployments that use it; parameters are
validated before that (`s3params`, `azureparams` import no SDK). `gcs` is a known name
that is refused with the reason.
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


def _s3(params: Mapping[str, object]) -> StorageDriver:
    from mirror.store.drivers.s3params import s3_settings

    settings = s3_settings(params)
    _need_obstore("s3")
    from mirror.store.drivers.s3 import S3Driver

    return S3Driver(settings)


def _azure(params: Mapping[str, object]) -> StorageDriver:
    from mirror.store.drivers.azureparams import azure_settings

    settings = azure_settings(params)
    _need_obstore("azure")
    from mirror.store.drivers.azure import AzureDriver

    return AzureDriver(settings)


# Known names that are refused, with the reason (instead of "unknown storage driver").
REFUSED: dict[str, str] = {
    "gcs": (
        "storage driver 'gcs' is not shipped yet: no GCS driver has been tested against an "
        "emulator; use s3 (Google Cloud Storage also serves the S3 XML API with HMAC keys) "
        "or azure"
    ),
}


def _need_obstore(name: str) -> None:
    try:
        import obstore  # noqa: F401
    except ImportError:
        raise ValueError(
            f"storage driver {name!r} needs the obstore package: "
            f"pip install 'mirror-registry[{name}]'"
        ) from None


_FACTORIES: dict[str, _Factory] = {
    "filesystem": _filesystem,
    "inmemory": _inmemory,
    "s3": _s3,
    "azure": _azure,
}


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
    if name in REFUSED:
        raise ValueError(REFUSED[name])
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(
            f"unknown storage driver {name!r}; available drivers: {', '.join(driver_names())}"
        )
    return CheckedDriver(factory(params))
