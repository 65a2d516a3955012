"""Storage drivers by name: each one's declared parameters, which also build it.

`DRIVERS` is the one list of drivers: the configuration reads it to accept, check and
document `storage.<name>` sections. A driver's implementation (and its optional SDK) is
imported by its parameters' `create()`, so only by deployments that use it. Every driver
handed out is wrapped in `CheckedDriver`.

The object-store drivers (`s3`, `azure`) are built from code only for now (their
parameters are checked by `s3params` / `azureparams`, which import no SDK); the
configuration refuses them until they are declared here. `gcs` is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from mirror.store.driver import StorageDriver
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.filesystem_params import FilesystemParameters
from mirror.store.drivers.inmemory_params import InMemoryParameters
from mirror.store.drivers.params import DriverParameters, from_mapping

__all__ = ["DRIVERS", "DriverParameters", "create_driver", "driver_names"]

DRIVERS: Final[Mapping[str, type[DriverParameters]]] = MappingProxyType(
    {"filesystem": FilesystemParameters, "inmemory": InMemoryParameters}
)


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


# Built from code (a mapping of registry:2 parameters); not yet offered by the configuration.
_CODE_ONLY: dict[str, Callable[[Mapping[str, object]], StorageDriver]] = {
    "s3": _s3,
    "azure": _azure,
}


def driver_names() -> list[str]:
    """Names accepted by `create_driver`."""
    return sorted({*DRIVERS, *_CODE_ONLY})


def create_driver(name: str, params: DriverParameters | Mapping[str, object]) -> StorageDriver:
    """Build the driver called `name`, wrapped in CheckedDriver.

    `params` is its validated parameters (`config.storage.parameters`), or a mapping from
    code holding exactly the parameters the driver honours (see `params.from_mapping`).
    Raises ValueError for an unknown name or bad parameters, with a message fit for the
    operator who wrote them.
    """
    if name in REFUSED:
        raise ValueError(REFUSED[name])
    if name in _CODE_ONLY and not isinstance(params, DriverParameters):
        return CheckedDriver(_CODE_ONLY[name](params))
    kind = DRIVERS.get(name)
    if kind is None:
        raise ValueError(
            f"unknown storage driver {name!r}; available drivers: {', '.join(driver_names())}"
        )
    if not isinstance(params, DriverParameters):
        params = from_mapping(name, kind, params)
    elif not isinstance(params, kind):
        raise ValueError(f"storage driver {name!r} takes {kind.__name__}, not {params!r}")
    return CheckedDriver(params.create())
