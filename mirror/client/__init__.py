"""The client package: the distribution API for Python code, and what `mirror copy` uses.

    from mirror.client import Registry, ImageRef

    async with Registry("registry.example:5000") as registry:
        manifest = await registry.get_manifest("team/app", "v1")

`Registry` (async) and `SyncRegistry` (blocking) speak to one registry host;
`copy_image` copies between `endpoints.RegistrySource`/`layout.LayoutSource` and a
destination (`referrers=True`: with the image's referrers, see `referrers`).
Registry failures are `mirror.registryhttp.errors.UpstreamError`s, the client's own
are `ClientError`s.
"""

from mirror.client.copy import CopyResult, copy_image
from mirror.client.credentials import Credentials
from mirror.client.errors import ClientError
from mirror.client.refs import ImageRef
from mirror.client.registry import Pushed, Registry, RemoteManifest
from mirror.client.sync import SyncRegistry

__all__ = [
    "ClientError",
    "CopyResult",
    "Credentials",
    "ImageRef",
    "Pushed",
    "Registry",
    "RemoteManifest",
    "SyncRegistry",
    "copy_image",
]
