"""The in-memory driver's parameters (`storage.inmemory`): it takes none."""

from __future__ import annotations

from typing import ClassVar

from mirror.settings import settings
from mirror.store.driver import StorageDriver
from mirror.store.drivers.params import DriverParameters


@settings
class InMemoryParameters(DriverParameters):
    meaning: ClassVar[str] = "keep everything in memory (tests, throwaway)"

    def create(self) -> StorageDriver:
        from mirror.store.drivers.inmemory import InMemoryDriver

        return InMemoryDriver()
