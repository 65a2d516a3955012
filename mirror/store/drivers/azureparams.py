"""The `azure` driver's parameters: registry:2's names and meanings, validated without
obstore.

- `accountname`, `container`, `rootdirectory` as in registry:2 (blob names are
  ``<rootdirectory>/docker/registry/v2/...`` without a leading slash).
- `serviceurl` (registry 3.x): the Blob service URL, for example Azurite's
  ``http://127.0.0.1:10000/devstoreaccount1``; by default
  ``https://<accountname>.blob.<realm>``, `realm` defaulting to ``core.windows.net``.
- `credentials.type`: `shared_key` (with `accountkey`), `client_secret` (with
  `credentials.clientid`, `tenantid`, `secret`) or `default_credentials` (obstore's
  chain: ``AZURE_*`` environment variables, workload identity, managed identity). Without
  `credentials`, an `accountkey` means `shared_key`, as in registry 2.x.
- `max_retries` / `retry_delay`: registry:2 polls a pending copy with them; obstore's copy
  does not report a pending state, so here they bound the retries of every request
  (`max_retries` times, backing off from `retry_delay`; -1 means no retry).
- `skipverify`: accept any TLS certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mirror.store.drivers.objsettings import Params, root_prefix

SECRET_KEYS = frozenset({"accountkey", "credentials.secret"})
KEYS = frozenset(
    {
        "accountname",
        "accountkey",
        "container",
        "realm",
        "serviceurl",
        "rootdirectory",
        "credentials",
        "max_retries",
        "retry_delay",
        "skipverify",
    }
)
CREDENTIAL_TYPES = ("shared_key", "client_secret", "default_credentials")
_CREDENTIAL_KEYS = frozenset({"type", "clientid", "tenantid", "secret"})
DEFAULT_REALM = "core.windows.net"
PART_SIZE = 10 * 1024 * 1024  # registry:2 has no parameter; 50,000 blocks = 500 GiB a blob


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """Validated `azure` parameters in the terms obstore needs."""

    account: str
    container: str
    service_url: str
    credentials: str
    account_key: str | None = field(default=None, repr=False)
    client_id: str | None = None
    tenant_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    root: str = ""
    max_retries: int = 5
    retry_delay: float = 0.1
    skip_verify: bool = False
    allow_http: bool = False
    part_size: int = PART_SIZE


def azure_settings(params: Mapping[str, object]) -> AzureSettings:
    """Validate registry:2-style `azure` parameters; ValueError names the offending key."""
    p = Params("azure", params, KEYS)
    account = p.string("accountname", required=True)
    container = p.string("container", required=True)
    assert account is not None and container is not None
    service_url = p.string("serviceurl")
    if service_url is not None and p.has("realm"):
        raise p.error("realm", "only builds the default serviceurl; give one of the two")
    if service_url is None:
        service_url = f"https://{account}.blob.{p.string('realm') or DEFAULT_REALM}"
    parts = urlsplit(service_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise p.error("serviceurl", f"must be an http(s) URL without a query, got {service_url!r}")

    kind, key, client = _credentials(p)
    retries = p.integer("max_retries", 5, -1, 100)
    return AzureSettings(
        account=account,
        container=container,
        service_url=service_url.rstrip("/"),
        credentials=kind,
        account_key=key,
        client_id=client[0],
        tenant_id=client[1],
        client_secret=client[2],
        root=root_prefix(p),
        max_retries=max(retries, 0),
        retry_delay=p.duration("retry_delay", 0.1),
        skip_verify=p.boolean("skipverify", False),
        allow_http=parts.scheme == "http",
    )


def _credentials(
    p: Params,
) -> tuple[str, str | None, tuple[str | None, str | None, str | None]]:
    key = p.string("accountkey")
    section = p.mapping("credentials")
    if section is None:
        if key is None:
            raise p.error(
                "credentials",
                f"is required: type one of {', '.join(CREDENTIAL_TYPES)} "
                "(or give accountkey for shared_key)",
            )
        return "shared_key", key, (None, None, None)
    creds = Params("azure", section, _CREDENTIAL_KEYS)
    kind = creds.string("type", required=True)
    if kind not in CREDENTIAL_TYPES:
        raise p.error("credentials", f"type must be one of {', '.join(CREDENTIAL_TYPES)}: {kind!r}")
    fields = (creds.string("clientid"), creds.string("tenantid"), creds.string("secret"))
    if kind == "shared_key":
        if key is None:
            raise p.error("accountkey", "is required for credentials type shared_key")
    elif key is not None:
        raise p.error("accountkey", f"is only used with shared_key, not {kind}")
    if kind == "client_secret":
        for name, value in zip(("clientid", "tenantid", "secret"), fields, strict=True):
            if value is None:
                raise p.error(f"credentials.{name}", "is required for client_secret")
    elif any(value is not None for value in fields):
        raise p.error("credentials", "clientid, tenantid and secret are only for client_secret")
    return kind, key, fields
