"""Failures of the client package that are not a registry's answer.

A registry's answers stay `mirror.registryhttp.errors.UpstreamError`s (not found,
unauthorised, rate limited, content that does not match its digest, network); these
are the client's own: a reference it cannot parse, an OCI layout it cannot use, local
content that does not match its digest, a platform an index does not have.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's own failures; the message is one line for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReferenceInvalid(ClientError):
    """An image reference or copy location that does not parse."""


class LayoutError(ClientError):
    """An OCI image layout (directory or archive) that is missing, damaged or lacks a tag."""


class ContentMismatch(ClientError):
    """Bytes that do not hash to the digest (or size) their descriptor gives."""


class PlatformMissing(ClientError):
    """An image index with no manifest for the platform asked."""


class CredentialsError(ClientError):
    """A docker config file or credential helper that cannot be read."""
