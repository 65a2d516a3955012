"""Domain errors, shared by every layer.

Each class is one condition a client can be told about. The proxy layer maps classes to
wire codes and HTTP statuses in a single table (`mirror.proxy.errors`); nothing below it
picks a status. Lower layers translate their own errors (driver errors, httpx errors) into
these at their boundary.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error a client may see. `message` is safe to show to a client."""

    def __init__(self, message: str = "", *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BlobUnknown(RegistryError):
    """The blob is not known to the repository."""


class BlobUploadUnknown(RegistryError):
    """The upload session does not exist (or belongs to another repository)."""


class BlobUploadInvalid(RegistryError):
    """The upload session cannot accept this request."""


class UploadRangeInvalid(BlobUploadInvalid):
    """A chunk does not start where the upload ends (416)."""

    def __init__(self, message: str = "", *, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


class UploadBusy(BlobUploadInvalid):
    """Another request is writing to the upload session, and did not finish in time (409)."""


class RangeNotSatisfiable(RegistryError):
    """A `Range` request lies outside the blob (416)."""

    def __init__(self, message: str = "", *, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


class DigestInvalid(RegistryError):
    """A digest is malformed, or content does not match its digest."""


class SizeInvalid(RegistryError):
    """Content length does not match what was declared."""


class ManifestUnknown(RegistryError):
    """The manifest (tag or digest) is not known."""


class ManifestInvalid(RegistryError):
    """The manifest is malformed or not acceptable."""


class ManifestBlobUnknown(RegistryError):
    """A manifest references a blob or manifest the repository does not have."""


class ManifestTooLarge(ManifestInvalid):
    """The manifest exceeds the size limit (413)."""


class NameInvalid(RegistryError):
    """The repository name is not valid."""


class NameUnknown(RegistryError):
    """The repository (or upstream namespace) is not known."""


class TagInvalid(RegistryError):
    """The tag is not valid."""


class PaginationInvalid(RegistryError):
    """Pagination parameters are not valid."""


class Unauthorized(RegistryError):
    """Authentication is required."""


class Denied(RegistryError):
    """The operation is not allowed."""


class Unsupported(RegistryError):
    """The operation or content is not supported."""


class ReadOnly(Unsupported):
    """The registry is in read-only mode."""


class InsufficientStorage(RegistryError):
    """The registry's storage is full: nothing more can be written until space is freed."""


class TooManyRequests(RegistryError):
    """The client (or our upstream) is being rate limited."""

    def __init__(self, message: str = "", *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RegistryError):
    """The content cannot be served now (upstream down and nothing cached)."""

    def __init__(self, message: str = "", *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
