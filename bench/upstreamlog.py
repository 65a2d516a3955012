"""What the upstream served during a workload, read from its access log.

docker-registry logs each request with the bytes it sent, when the response completes.
The log is read before and after the workload (each time once it has stopped growing),
and the entries in between are the ones the workload caused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.distribution import access_log, settle_log
from tests.support.images import BuiltImage


@dataclass
class UpstreamWindow:
    """Blob GETs of one image's blobs that the upstream answered inside the window."""

    sizes: dict[str, int]  # digest -> size of each blob of the image
    gets: dict[str, int] = field(default_factory=dict)  # digest -> GET requests
    sent: int = 0  # bytes of those GETs' bodies

    @property
    def image_size(self) -> int:
        return sum(self.sizes.values())

    @property
    def ratio(self) -> float:
        """Bytes fetched from the upstream over the bytes of the image's blobs."""
        return self.sent / self.image_size

    def record(self, method: str, path: str, size: int) -> None:
        if method != "GET" or "/blobs/" not in path:
            return
        digest = path.rsplit("/blobs/", 1)[1]
        if digest in self.sizes:
            self.gets[digest] = self.gets.get(digest, 0) + 1
            self.sent += size

    def describe(self) -> str:
        requests = sum(self.gets.values())
        return (
            f"{requests} upstream blob GETs for {len(self.sizes)} blobs, "
            f"{self.sent:,} of {self.image_size:,} bytes ({self.ratio:.2f}x)"
        )


@contextmanager
def upstream_window(log_path: Path, image: BuiltImage) -> Iterator[UpstreamWindow]:
    """Count what the upstream logged for `image`'s blobs during the with-block."""
    settle_log(log_path)
    start = len(access_log(log_path))
    window = UpstreamWindow({blob.digest: blob.size for blob in image.blobs})
    yield window
    settle_log(log_path)
    for entry in access_log(log_path)[start:]:
        window.record(entry.method, entry.path, entry.size)
