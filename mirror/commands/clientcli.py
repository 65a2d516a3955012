"""What the client verbs (`copy`, `ls`, `catalog`, `inspect`, `digest`, `tag`, `delete`)
share: their common flags, one `Registry` per host, and errors as one line.

Failures print `mirror: VERB: <what>` on stderr - `unauthorized`, `not found`,
`digest mismatch`, `rate limited`, `network` or `registry error`, then the detail - and
exit with status 1 (2 for a command line that does not parse). Never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mirror.client.credentials import Credentials
from mirror.client.errors import ClientError, ContentMismatch, CredentialsError, ReferenceInvalid
from mirror.client.registry import Registry
from mirror.errors import RegistryError
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
)


def common_flags(parser: argparse.ArgumentParser, *, creds: bool = True) -> None:
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP, and HTTPS without certificate verification",
    )
    if creds:
        parser.add_argument(
            "--creds", metavar="USER:PASS", help="credentials (default: ~/.docker/config.json)"
        )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


class Registries:
    """One `Registry` per (host, credentials), closed together."""

    def __init__(self, insecure: bool) -> None:
        self._insecure = insecure
        self._open: dict[tuple[str, Credentials | None], Registry] = {}

    def get(self, host: str, credentials: Credentials | None = None) -> Registry:
        key = (host, credentials)
        if key not in self._open:
            self._open[key] = Registry(host, insecure=self._insecure, credentials=credentials)
        return self._open[key]

    async def aclose(self) -> None:
        for registry in self._open.values():
            await registry.aclose()
        self._open.clear()


def credentials(text: str | None) -> Credentials | None:
    return Credentials.parse(text) if text else None


def run(verb: str, work: Callable[[Registries], Awaitable[int]], insecure: bool) -> int:
    """Run a verb's coroutine with its registries; failures as one line."""

    async def main() -> int:
        registries = Registries(insecure)
        try:
            return await work(registries)
        finally:
            await registries.aclose()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print(f"mirror: {verb}: interrupted", file=sys.stderr)
        return 130
    except (ReferenceInvalid, CredentialsError) as exc:
        print(f"mirror: {verb}: {exc.message}", file=sys.stderr)
        return 2
    except (UpstreamError, ClientError, RegistryError, OSError) as exc:
        print(f"mirror: {verb}: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: BaseException) -> str:
    """A failure as one line: its kind, then what the registry or the system said."""
    if isinstance(exc, UpstreamAuthError):
        return f"unauthorized: {exc.message}"
    if isinstance(exc, UpstreamNotFound):
        return f"not found: {exc.message}"
    if isinstance(exc, UpstreamContentError | ContentMismatch):
        return f"digest mismatch: {exc.message}"
    if isinstance(exc, UpstreamRateLimited):
        after = f" (retry after {exc.retry_after})" if exc.retry_after else ""
        return f"rate limited{after}: {exc.message}"
    if isinstance(exc, UpstreamError):
        kind = "network" if exc.status is None else "registry error"
        return f"{kind}: {exc.message}"
    if isinstance(exc, ClientError | RegistryError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def emit(args: argparse.Namespace, doc: Any, text: str | None) -> None:
    """Print `doc` as JSON with --json, else `text` (when there is any) unless --quiet."""
    if args.json:
        print(json.dumps(doc, indent=2))
    elif text and not args.quiet:
        print(text)
