"""What a storage driver is configured with: its parameters, declared once, and how to build it.

Each driver has a small declarations module (`filesystem_params.py`, ...) holding a
`DriverParameters` subclass: its fields are the driver's keys (`storage.<name>.<key>` in the
configuration: type, default, meaning), its `create()` builds the driver. That module
imports neither the driver's implementation nor its SDK at import time, so reading and
checking a configuration never loads a driver the configuration does not use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, TypeVar

from mirror.settings import Problem, fields_of, format_path, key_of, role_of, settings, within
from mirror.store.driver import StorageDriver

P = TypeVar("P", bound="DriverParameters")


@settings
class DriverParameters(ABC):
    """The parameters of one storage driver; a subclass per driver declares them."""

    # What the driver is, for the configuration reference table.
    meaning: ClassVar[str] = ""
    # The keys code must give (`from_mapping`); None: every honoured key. Drivers with
    # many optional keys (the object stores) name only those without a usable default.
    from_code: ClassVar[tuple[str, ...] | None] = None

    @abstractmethod
    def create(self) -> StorageDriver:
        """A new driver with these parameters (its module imported only now)."""

    @property
    def local_directory(self) -> str | None:
        """The local directory this driver keeps its files in, if it has one."""
        return None


def honoured_keys(kind: type[DriverParameters]) -> list[str]:
    """The keys of `kind` that do something (not the accepted-and-ignored ones)."""
    return [key_of(name, info) for name, info in fields_of(kind).items() if role_of(info) == "key"]


def from_mapping(name: str, kind: type[P], params: Mapping[str, object]) -> P:
    """Parameters given by code as a mapping: honoured keys only, each required one given
    (`kind.from_code`, by default all of them).

    Defaults and accepted-and-ignored keys exist for registry:2 configuration files; code
    says what it means. Raises ValueError, naming the driver and the parameter.
    """
    honoured = honoured_keys(kind)
    unknown = sorted(str(key) for key in params if str(key) not in honoured)
    if unknown:
        raise ValueError(
            f"storage driver {name!r} does not take parameter(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(sorted(honoured)) or 'none'}"
        )
    for key in honoured if kind.from_code is None else kind.from_code:
        if params.get(key) is None:
            raise ValueError(f"storage driver {name!r} needs {key!r} (required)")
    try:
        found: P = within(kind, dict(params))
    except Problem as problem:
        raise ValueError(
            f"storage driver {name!r} needs {format_path(problem.at)!r} ({problem.message})"
        ) from None
    return found
