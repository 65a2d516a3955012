"""`mirror export` and `mirror import`: archives for air-gapped replicas."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from anyio import to_thread

from mirror.archive.export import ExportResult, covered_by, write_archive
from mirror.archive.format import ArchiveInvalid
from mirror.archive.importer import Importer, ImportResult
from mirror.archive.selection import SelectionError, Wanted, select
from mirror.archive.tarreader import TarReader
from mirror.commands.progress import progress_for, size_text
from mirror.config import Config
from mirror.errors import RegistryError
from mirror.proxy.app import store_access
from mirror.store.driver import StorageDriverError


def run_export(config: Config, args: argparse.Namespace) -> int:
    if args.output in (None, "-") and sys.stdout.isatty():
        return _fail("export", "refusing to write an archive to a terminal; give -o FILE")
    try:
        wanted = [Wanted.parse(ref) for ref in args.refs]
        result = asyncio.run(_export(config, wanted, args))
    except (SelectionError, ArchiveInvalid, RegistryError, StorageDriverError, OSError) as exc:
        return _fail("export", _reason(exc))
    if not args.quiet:
        where = args.output if args.output not in (None, "-") else "standard output"
        print(f"mirror: exported {_export_summary(result)} to {where}", file=sys.stderr)
    return 0


def run_import(config: Config, args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_import(config, args))
    except ArchiveInvalid as exc:
        return _fail("import", f"{args.file} refused: {exc}; nothing of it was made visible")
    except (RegistryError, StorageDriverError, OSError) as exc:
        return _fail("import", _reason(exc))
    if not args.quiet:
        print(f"mirror: imported {_import_summary(result)}", file=sys.stderr)
    return 0


async def _export(config: Config, wanted: list[Wanted], args: argparse.Namespace) -> ExportResult:
    since = await to_thread.run_sync(covered_by, args.since) if args.since else set()
    access = store_access(config)
    try:
        selection = await select(access.store, wanted, access.origin_of)
        if args.output in (None, "-"):
            sys.stdout.flush()
            with progress_for("exporting", quiet=args.quiet) as progress:
                return await write_archive(
                    access.store, selection, sys.stdout.fileno(), since=since, progress=progress
                )
        # Written beside the target and renamed at the end: a cut export leaves no
        # archive that looks whole.
        partial = f"{args.output}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with progress_for("exporting", quiet=args.quiet) as progress:
                result = await write_archive(
                    access.store, selection, fd, since=since, progress=progress
                )
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        os.close(fd)
        os.replace(partial, args.output)
        return result
    finally:
        await access.aclose()


async def _import(config: Config, args: argparse.Namespace) -> ImportResult:
    access = store_access(config)
    try:
        if args.file == "-":
            reader, size = TarReader(sys.stdin.buffer, seekable=False), None
            with progress_for("importing", quiet=args.quiet) as progress:
                importer = Importer(access.store, metadata=access.metadata, progress=progress)
                return await importer.run(reader, size)
        with open(args.file, "rb") as archive:  # noqa: ASYNC230 (opening is not reading)
            size = os.fstat(archive.fileno()).st_size
            with progress_for("importing", quiet=args.quiet) as progress:
                importer = Importer(access.store, metadata=access.metadata, progress=progress)
                return await importer.run(TarReader(archive, seekable=True), size)
    finally:
        await access.aclose()


def _export_summary(result: ExportResult) -> str:
    text = f"{result.entries} images: {result.blobs} blobs, {size_text(result.bytes)}"
    if result.skipped:
        text += f" ({result.skipped} blobs the earlier archive has left out)"
    if result.left_out:
        text += f" ({result.left_out} referenced but never cached, not exported)"
    return text


def _import_summary(result: ImportResult) -> str:
    text = (
        f"{result.entries} images of {result.repositories} repositories: "
        f"{result.blobs} blobs written ({size_text(result.bytes)}), {result.present} already stored"
    )
    if result.stamps_failed:
        text += f"; {result.stamps_failed} tags could not be marked fresh"
    return text


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RegistryError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _fail(command: str, message: str) -> int:
    print(f"mirror: {command} failed: {message}", file=sys.stderr)
    return 1
