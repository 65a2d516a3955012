"""The S3 driver (Amazon S3 and S3-compatible services) on obstore.

Parameters are registry:2's (validated in `s3params`). Beyond `ObjectStoreDriver`:

- Server-side encryption (`encrypt`, `keyid`) is set on the store, so puts, multipart
  uploads and copies all carry it; the storage class goes with every put and upload.
- `move` copies with one CopyObject, which S3 limits to 5 GiB; larger objects stream
  through the driver (one GET into one multipart upload of `chunksize` parts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import obstore
from obstore.store import S3Store

from mirror.store.drivers.objclient import request_options, retry_config, stream_options
from mirror.store.drivers.objsettings import GIB, Tuning
from mirror.store.drivers.objstore import ObjectStoreDriver
from mirror.store.drivers.s3params import S3Settings

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import S3Config

COPY_LIMIT = 5 * GIB  # S3's limit for one CopyObject


class S3Driver(ObjectStoreDriver):
    """A `StorageDriver` (with `RedirectURL`) on one S3 bucket."""

    name = "s3"

    def __init__(
        self, settings: S3Settings, *, tuning: Tuning | None = None, copy_limit: int = COPY_LIMIT
    ) -> None:
        tuning = tuning or Tuning()
        config = _config(settings)
        retry = retry_config(tuning)
        store = S3Store(
            settings.bucket,
            config=config,
            client_options=request_options(
                tuning, settings.allow_http, settings.skip_verify, settings.user_agent
            ),
            retry_config=retry,
        )
        read_store = S3Store(
            settings.bucket,
            config=config,
            client_options=stream_options(
                tuning, settings.allow_http, settings.skip_verify, settings.user_agent
            ),
            retry_config=retry,
        )
        attributes: Attributes | None = (
            {"Storage-Class": settings.storage_class} if settings.storage_class else None
        )
        super().__init__(
            store,
            read_store,
            root=settings.root,
            part_size=settings.part_size,
            tuning=tuning,
            attributes=attributes,
        )
        self.settings = settings
        self._copy_limit = copy_limit

    async def copy(self, source: str, target: str) -> None:
        """CopyObject up to the copy limit; a streamed re-upload above it."""
        size = (await obstore.head_async(self._store, source))["size"]
        if size <= self._copy_limit:
            await obstore.copy_async(self._store, source, target, overwrite=True)
            return
        result = await obstore.get_async(self._read_store, source)
        await obstore.put_async(
            self._store,
            target,
            result.stream(min_chunk_size=self._part_size),
            attributes=self._attributes,
            chunk_size=self._part_size,
            max_concurrency=self._tuning.part_concurrency,
        )


def _config(settings: S3Settings) -> S3Config:
    config: S3Config = {
        "region": settings.region,
        "virtual_hosted_style_request": settings.virtual_hosted,
    }
    if settings.endpoint is not None:
        config["endpoint"] = settings.endpoint
    if settings.access_key is not None and settings.secret_key is not None:
        config["access_key_id"] = settings.access_key
        config["secret_access_key"] = settings.secret_key
    if settings.encryption is not None:
        config["server_side_encryption"] = settings.encryption
    if settings.kms_key_id is not None:
        config["sse_kms_key_id"] = settings.kms_key_id
    return config
