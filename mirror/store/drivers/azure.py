"""The Azure Blob Storage driver on obstore.

Parameters are registry:2's (validated in `azureparams`). Objects are block blobs:
`put_content` is one Put Blob, writers stage blocks and commit the block list at
`commit` (see `objio`), `move` is a Copy Blob then a delete. Signed URLs are service SAS
URLs (shared key) or user-delegation SAS URLs (token credentials).

One Azure rule shows through: committing a blob discards the uncommitted blocks others
have staged for the same name so far. Of two writers of one path whose content exceeds one
block (10 MiB), the one committing second then fails (StorageDriverError) if its blocks
were staged before the first commit, leaving the first one's object in place; a single-PUT
writer or `put_content` does the same to an open multi-block writer. Nothing partial or
mixed is ever visible; the registry writes one path from two places at once only for
content-addressed blobs, where either content is right.

Blobs written by registry:2's Azure driver (append blobs) read like any other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from obstore.store import AzureStore

from mirror.store.drivers.azureparams import AzureSettings
from mirror.store.drivers.objclient import request_options, retry_config, stream_options
from mirror.store.drivers.objsettings import Tuning
from mirror.store.drivers.objstore import ObjectStoreDriver

if TYPE_CHECKING:
    from obstore.store import AzureConfig


class AzureDriver(ObjectStoreDriver):
    """A `StorageDriver` (with `RedirectURL`) on one Azure Blob container."""

    name = "azure"
    head_signed_as = "GET"

    def __init__(self, settings: AzureSettings, *, tuning: Tuning | None = None) -> None:
        # registry:2's retry parameters bound obstore's retries (see azureparams).
        tuning = replace(
            tuning or Tuning(),
            max_retries=settings.max_retries,
            backoff_initial=settings.retry_delay,
        )
        config = _config(settings)
        retry = retry_config(tuning)
        store = AzureStore(
            settings.container,
            config=config,
            client_options=request_options(tuning, settings.allow_http, settings.skip_verify),
            retry_config=retry,
        )
        read_store = AzureStore(
            settings.container,
            config=config,
            client_options=stream_options(tuning, settings.allow_http, settings.skip_verify),
            retry_config=retry,
        )
        super().__init__(
            store, read_store, root=settings.root, part_size=settings.part_size, tuning=tuning
        )
        self.settings = settings


def _config(settings: AzureSettings) -> AzureConfig:
    config: AzureConfig = {"account_name": settings.account, "endpoint": settings.service_url}
    if settings.credentials == "shared_key" and settings.account_key is not None:
        config["account_key"] = settings.account_key
    elif settings.credentials == "client_secret":
        assert settings.client_id and settings.tenant_id and settings.client_secret
        config["client_id"] = settings.client_id
        config["tenant_id"] = settings.tenant_id
        config["client_secret"] = settings.client_secret
    return config
