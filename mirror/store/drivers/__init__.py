"""Storage drivers by name: each one's declared parameters, which also build it.

`DRIVERS` is the one list of drivers: the configuration reads it to accept, check and
document `storage.<name>` sections. A driver's implementation (and its optional SDK) is
imported by its parameters' `create()`, so only by deployments that use it. Every driver
handed out is wrapped in `CheckedDriver`.

The object stores (`s3`, `azure`, on obstore) are declared in `objparams`, which imports no
SDK. `gcs` is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from mirror.store.driver import StorageDriver
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.filesystem_params import FilesystemParameters
from mirror.store.drivers.inmemory_params import InMemoryParameters
from mirror.store.drivers.objparams import AzureParameters, S3Parameters
from mirror.store.drivers.params import DriverParameters, from_mapping

__all__ = ["DRIVERS", "REFUSED", "DriverParameters", "create_driver", "driver_names"]

DRIVERS: Final[Mapping[str, type[DriverParameters]]] = MappingProxyType(
    {
        "filesystem": FilesystemParameters,
        "inmemory": InMemoryParameters,
        "s3": S3Parameters,
        "azure": AzureParameters,
    }
)


# Known names that are refused, with the reason (instead of "unknown storage driver").
REFUSED: dict[str, str] = {
    "gcs": (
        "storage driver 'gcs' is not shipped yet: no GCS driver has been tested against an "
        "emulator; use s3 (Google Cloud Storage also serves the S3 XML API with HMAC keys) "
        "or azure"
    ),
}


def driver_names() -> list[str]:
    """Names accepted by `create_driver`."""
    return sorted(DRIVERS)


def create_driver(name: str, params: DriverParameters | Mapping[str, object]) -> StorageDriver:
    """Build the driver called `name`, wrapped in CheckedDriver.

    `params` is its validated parameters (`config.storage.parameters`), or a mapping from
    code holding exactly the parameters the driver honours (see `params.from_mapping`).
    Raises ValueError for an unknown name or bad parameters, with a message fit for the
    operator who wrote them.
    """
    if name in REFUSED:
        raise ValueError(REFUSED[name])
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
