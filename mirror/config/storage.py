"""The `storage` section: one driver (a key named after it, holding its parameters) and
what the store does on top of it (deletes, read-only mode, upload purging).

The drivers and their parameters are declared by the drivers (`mirror.store.drivers`);
this section only picks one: exactly one key that is not a setting below must name a
driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from mirror.config.gc import GCConfig
from mirror.durations import WEEK
from mirror.settings import (
    Duration,
    Flag,
    OneOf,
    PositiveDuration,
    Problem,
    RawText,
    Text,
    adapter,
    derived,
    ignored,
    keys_of,
    prepare,
    setting,
    settings,
    within,
)
from mirror.store.drivers import DRIVERS, REFUSED, DriverParameters


@settings
class UploadPurgingConfig:
    """Removal of abandoned upload sessions older than `age`, every `interval` seconds."""

    enabled: Flag = setting(default=True, doc="remove upload sessions abandoned for `age`")
    age: Duration = setting(default=WEEK, doc="how long an unfinished upload is kept")
    interval: PositiveDuration = setting(
        default=24 * 3600.0, doc="how often abandoned uploads are looked for"
    )
    dry_run: Flag = setting(default=False, key="dryrun", doc="only log what would be removed")


@settings
class ReadOnlyConfig:
    enabled: Flag = setting(default=False, doc="refuse every write with `UNSUPPORTED`")


@settings
class MaintenanceConfig:
    uploadpurging: UploadPurgingConfig = setting(
        default_factory=UploadPurgingConfig, doc="upload purging"
    )
    readonly: ReadOnlyConfig = setting(default_factory=ReadOnlyConfig, doc="read-only mode")
    gc: GCConfig = setting(default_factory=GCConfig, doc="online garbage collection")


@settings
class DeleteConfig:
    enabled: Flag = setting(default=False, doc="allow `DELETE` of manifests, tags and blobs")


@settings
class BlobDescriptorCacheConfig:
    blobdescriptor: Annotated[Literal["inmemory", "redis"], OneOf()] = ignored(
        default="inmemory", why="mirror keeps its own metadata cache"
    )


@settings
class RedirectConfig:
    disable: Flag = setting(
        default=False,
        doc="serve blob GETs through the registry; otherwise a driver that signs URLs (s3, "
        "azure) answers them with 307 to a URL valid 20 minutes (HEAD, manifests and ranges "
        "are always served directly)",
    )


@settings
class StorageConfig:
    # The keys naming a driver, each holding that driver's parameters.
    choices: ClassVar[Mapping[str, type[DriverParameters]]] = DRIVERS

    driver: Text = derived(doc="the configured driver's name")
    parameters: DriverParameters = derived(doc="its parameters")
    delete: DeleteConfig = setting(default_factory=DeleteConfig, doc="deletes")
    maintenance: MaintenanceConfig = setting(default_factory=MaintenanceConfig, doc="upkeep")
    cache: BlobDescriptorCacheConfig = ignored(
        default_factory=BlobDescriptorCacheConfig, why="mirror keeps its own metadata cache"
    )
    redirect: RedirectConfig = setting(default_factory=RedirectConfig, doc="blob redirects")

    @property
    def root_directory(self) -> str | None:
        """The driver's local directory (the filesystem driver's root), if it has one."""
        return self.parameters.local_directory

    @property
    def delete_enabled(self) -> bool:
        return self.delete.enabled

    @property
    def redirect_enabled(self) -> bool:
        return not self.redirect.disable

    @property
    def read_only(self) -> bool:
        return self.maintenance.readonly.enabled

    @property
    def upload_purging(self) -> UploadPurgingConfig:
        return self.maintenance.uploadpurging

    @classmethod
    def supported(cls) -> str:
        return ", ".join(sorted(cls.choices))

    @classmethod
    def arrange(cls, data: dict[str, object]) -> dict[str, object]:
        """Pick the driver out of the section: the one key that is not a setting."""
        own = keys_of(cls)
        drivers = [key for key in data if key not in own]
        for name in drivers:
            if name in REFUSED:
                raise Problem(REFUSED[name], (name,))
            if name not in cls.choices:
                raise Problem(f"unsupported storage driver (supported: {cls.supported()})", (name,))
        if not drivers:
            raise Problem(f"no storage driver: configure one of {cls.supported()}")
        if len(drivers) > 1:
            raise Problem(f"more than one storage driver: {', '.join(drivers)}")
        name = drivers[0]
        given = data.pop(name)
        if isinstance(given, RawText):
            try:
                given = given.parsed()
            except Problem as problem:
                raise problem.under(name) from None
        parameters = within(cls.choices[name], {} if given is None else given, name)
        return {**prepare(cls, data), "driver": name, "parameters": parameters}

    @model_serializer(mode="wrap")
    def _file_form(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, object]:
        parameters = adapter(type(self.parameters)).dump_python(
            self.parameters,
            mode="json" if info.mode_is_json() else "python",
            by_alias=info.by_alias,
            exclude_none=info.exclude_none,
        )
        return {self.driver: parameters or None, **handler(self)}
