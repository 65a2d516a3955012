"""The `cache` section: where the local metadata (diskcache) and lease files go."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile

from mirror.settings import ByteSize, Flag, Text, derived, setting, settings


@settings
class CacheConfig:
    """`ephemeral` is True when the directory is a fresh per-process temporary path chosen
    because nothing durable was configured; whoever creates it may remove it on exit.
    The directory is not created here.
    """

    directory: Text = setting(
        default="",
        doc="local metadata and lease files (default: `<rootdirectory>/_mirror`, or a "
        "temporary directory removed on exit when the driver has no local directory)",
    )
    ephemeral: Flag = derived(default=False, doc="a temporary directory chosen here")
    maxsize: ByteSize = setting(
        default=0,
        doc="cap on the cached content of all upstreams (`200MB`, `50GiB`; 0: none): the "
        "least recently used images go first; local repositories do not count",
    )

    def placed(self, local_directory: str | None) -> CacheConfig:
        """This section with its directory decided, next to the driver's `local_directory`."""
        if self.directory:
            return self
        if local_directory is not None:
            return dataclasses.replace(self, directory=os.path.join(local_directory, "_mirror"))
        name = f"mirror-{os.getpid()}-{secrets.token_hex(4)}"
        directory = os.path.join(tempfile.gettempdir(), name)
        return dataclasses.replace(self, directory=directory, ephemeral=True)
