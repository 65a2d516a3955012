"""`mirror copy SRC DST`: an image (an index with all its children) between registries
and OCI layouts, digests kept."""

from __future__ import annotations

import argparse
import sys

from mirror.client.copy import DEFAULT_JOBS, CopyResult, copy_image
from mirror.client.locations import Location, open_destination, open_source
from mirror.commands.clientcli import Registries, common_flags, credentials, emit, run
from mirror.commands.copybars import copy_progress
from mirror.lifecycle.report import human_bytes
from mirror.sizes import parse_size


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    copy = commands.add_parser(
        "copy",
        help="copy an image between registries, OCI directories and OCI archives",
        description="Copy an image, or an index with every child, keeping its digest. "
        "Locations: docker://HOST/REPO:TAG or docker://HOST/REPO@DIGEST, oci:DIR[:TAG], "
        "oci-archive:FILE[:TAG]. Blobs the destination has are skipped (HEAD) or mounted.",
    )
    copy.add_argument("source", metavar="SRC")
    copy.add_argument("destination", metavar="DST")
    copy.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="copy only this platform's image of an index (its digest is not the index's)",
    )
    copy.add_argument(
        "-r",
        "--referrers",
        action="store_true",
        help="also copy the referrers (signatures, SBOMs: manifests whose subject is a"
        " copied manifest), and theirs, through the referrers API or its fallback tag",
    )
    copy.add_argument("--src-creds", metavar="USER:PASS", help="credentials for the source")
    copy.add_argument("--dest-creds", metavar="USER:PASS", help="credentials for the destination")
    copy.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        help=f"blobs in flight (default {DEFAULT_JOBS})",
    )
    copy.add_argument(
        "--chunk-size",
        type=parse_size,
        metavar="SIZE",
        help="upload blobs in PATCH requests of this size (default: one stream per blob)",
    )
    common_flags(copy)


def run_copy(args: argparse.Namespace) -> int:
    return run("copy", lambda registries: _copy(registries, args), args.insecure)


async def _copy(registries: Registries, args: argparse.Namespace) -> int:
    source_at = Location.parse(args.source)
    destination_at = Location.parse(args.destination)
    source_creds = credentials(args.src_creds or args.creds)
    destination_creds = credentials(args.dest_creds or args.creds)
    source = await open_source(source_at, lambda host: registries.get(host, source_creds))
    try:
        destination = await open_destination(
            destination_at,
            lambda host: registries.get(host, destination_creds),
            chunk_size=args.chunk_size,
        )
        with copy_progress(quiet=args.quiet or args.json) as progress:
            result = await copy_image(
                source,
                destination,
                tag=destination_at.tag,
                platform=args.platform,
                jobs=args.jobs,
                progress=progress,
                referrers=args.referrers,
            )
    finally:
        await source.aclose()
    if result.platform is not None and not args.quiet:
        print(
            f"mirror: copy: only the {result.platform} image of index {result.source_digest}: "
            f"the destination's digest is {result.digest}",
            file=sys.stderr,
        )
    emit(args, result.to_json(), _summary(result))
    return 0


def _summary(result: CopyResult) -> str:
    skipped = result.present + result.mounted
    text = (
        f"{result.destination}: {result.digest} ({_count(result.manifests, 'manifest')}, "
        f"{_count(result.blobs, 'blob')}: {result.uploaded} copied, {human_bytes(result.bytes)}"
    )
    if skipped:
        text += f"; {result.present} present, {result.mounted} mounted"
    if result.referrers:
        text += f"; {_count(result.referrers, 'referrer')}"
    return text + ")"


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"
