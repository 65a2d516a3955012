"""The object stores' declared parameters (`storage.s3`, `storage.azure`), registry:2's keys.

The declarations give each key its type, default and meaning (the configuration reads,
documents and redacts them); the checks between keys and the translation into obstore's
terms stay in `s3params` / `azureparams`, which the declarations run when validated, so a
bad combination is refused when the configuration is read, not when the driver starts.
Neither imports obstore: `create()` does, and says how to install it when it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from mirror.settings import (
    Duration,
    Flag,
    Integer,
    Problem,
    Secret,
    Text,
    fields_of,
    ignored,
    key_of,
    role_of,
    setting,
    settings,
)
from mirror.store.driver import StorageDriver
from mirror.store.drivers.azureparams import AzureSettings, azure_settings
from mirror.store.drivers.objsettings import ParameterError
from mirror.store.drivers.params import DriverParameters
from mirror.store.drivers.s3params import DEFAULT_PART, S3Settings, s3_settings

_COPY_WHY = (
    "obstore has no multipart (UploadPartCopy) copy: moves are one server-side copy up to "
    "5 GiB and stream larger objects in chunksize parts"
)


def _given(params: object) -> dict[str, object]:
    """The honoured keys of a declaration as registry:2 spells them (sections as mappings)."""
    found: dict[str, object] = {}
    for name, info in fields_of(type(params)).items():
        if role_of(info) != "key":
            continue
        value = getattr(params, name)
        if value is None or value == "":
            continue
        found[key_of(name, info)] = (
            _given(value) if hasattr(value, "__dataclass_fields__") else value
        )
    return found


def _checked(check: Callable[[Mapping[str, object]], object], params: Mapping[str, object]) -> None:
    try:
        check(params)
    except ParameterError as exc:
        raise Problem(exc.detail, tuple(exc.key.split("."))) from None


def _need_obstore(name: str) -> None:
    try:
        import obstore  # noqa: F401
    except ImportError:
        raise ValueError(
            f"storage driver {name!r} needs the obstore package: "
            f"pip install 'mirror-registry[{name}]'"
        ) from None


@settings
class S3Parameters(DriverParameters):
    meaning: ClassVar[str] = "an S3 bucket (AWS or S3-compatible), registry:2's object layout"
    from_code: ClassVar[tuple[str, ...]] = ("bucket",)

    region: Text = setting(default="", doc="AWS region (required unless `regionendpoint`)")
    bucket: Text = setting(default="", doc="bucket name (required)")
    regionendpoint: Text = setting(
        default="", doc="endpoint of an S3-compatible service (URL, or host with `secure`)"
    )
    forcepathstyle: Flag = setting(default=False, doc="path-style addressing")
    accesskey: Secret = setting(default="", doc="access key id (absent: the AWS chain)")
    secretkey: Secret = setting(default="", doc="secret access key")
    secure: Flag = setting(default=True, doc="https (false: plain http)")
    skipverify: Flag = setting(default=False, doc="accept any TLS certificate")
    v4auth: Flag = setting(default=True, doc="Signature V4 (only true is supported)")
    encrypt: Flag = setting(default=False, doc="server-side encryption (SSE-S3, or KMS with keyid)")
    keyid: Text = setting(default="", doc="KMS key id for SSE-KMS (needs encrypt)")
    chunksize: Integer = setting(
        default=DEFAULT_PART, doc="multipart upload part size in bytes (5 MiB to 5 GiB)"
    )
    multipartcopychunksize: Integer | None = ignored(default=None, why=_COPY_WHY)
    multipartcopymaxconcurrency: Integer | None = ignored(default=None, why=_COPY_WHY)
    multipartcopythresholdsize: Integer | None = ignored(default=None, why=_COPY_WHY)
    rootdirectory: Text = setting(default="", doc="key prefix of everything stored")
    storageclass: Text = setting(default="STANDARD", doc="STANDARD, or NONE to send none")
    objectacl: Text = setting(default="private", doc="canned ACL (only private)")
    useragent: Text = setting(default="", doc="User-Agent of the driver's requests")

    def __post_init__(self) -> None:
        _checked(s3_settings, _given(self))

    @property
    def settings(self) -> S3Settings:
        return s3_settings(_given(self))

    def create(self) -> StorageDriver:
        settings = self.settings
        _need_obstore("s3")
        from mirror.store.drivers.s3 import S3Driver

        return S3Driver(settings)


@settings
class AzureCredentials:
    type: Text = setting(
        default="", doc="shared_key, client_secret or default_credentials (obstore's chain)"
    )
    clientid: Text = setting(default="", doc="client_secret: application (client) id")
    tenantid: Text = setting(default="", doc="client_secret: tenant id")
    secret: Secret = setting(default="", doc="client_secret: the client secret")


@settings
class AzureParameters(DriverParameters):
    meaning: ClassVar[str] = "an Azure Blob Storage container, registry:2's object layout"
    from_code: ClassVar[tuple[str, ...]] = ("accountname", "container")

    accountname: Text = setting(default="", doc="storage account (required)")
    accountkey: Secret = setting(default="", doc="account key (shared_key)")
    container: Text = setting(default="", doc="container (required)")
    realm: Text = setting(default="", doc="domain of the default serviceurl (core.windows.net)")
    serviceurl: Text = setting(default="", doc="Blob service URL (registry 3.x; Azurite's)")
    rootdirectory: Text = setting(default="", doc="blob name prefix of everything stored")
    credentials: AzureCredentials | None = setting(
        default=None, doc="how to authenticate (without it: accountkey means shared_key)"
    )
    max_retries: Integer = setting(default=5, doc="retries of a failed request (-1: none)")
    retry_delay: Duration = setting(default=0.1, doc="first retry's back-off")
    skipverify: Flag = setting(default=False, doc="accept any TLS certificate")

    def __post_init__(self) -> None:
        _checked(azure_settings, _given(self))

    @property
    def settings(self) -> AzureSettings:
        return azure_settings(_given(self))

    def create(self) -> StorageDriver:
        settings = self.settings
        _need_obstore("azure")
        from mirror.store.drivers.azure import AzureDriver

        return AzureDriver(settings)
