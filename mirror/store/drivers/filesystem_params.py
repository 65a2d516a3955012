"""The filesystem driver's parameters (`storage.filesystem`), as registry:2 names them."""

from __future__ import annotations

from typing import ClassVar, Final

from mirror.settings import Integer, Text, ignored, setting, settings
from mirror.store.driver import StorageDriver
from mirror.store.drivers.params import DriverParameters

DEFAULT_ROOT_DIRECTORY: Final = "/var/lib/registry"  # registry:2's


@settings
class FilesystemParameters(DriverParameters):
    meaning: ClassVar[str] = "files in a local directory"

    rootdirectory: Text = setting(
        default=DEFAULT_ROOT_DIRECTORY,
        min_length=1,
        doc="storage root, in registry:2's on-disk layout (a registry:2 root can be served as is)",
    )
    maxthreads: Integer = ignored(default=100, ge=1, why="no thread pool per driver")

    def create(self) -> StorageDriver:
        from mirror.store.drivers.filesystem import FilesystemDriver

        return FilesystemDriver(self.rootdirectory)

    @property
    def local_directory(self) -> str | None:
        return self.rootdirectory
