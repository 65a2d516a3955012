"""`mirror sync`: the background sync of `mirror serve`, run by hand."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mirror.config import Config
from mirror.proxy.app import SyncSession, sync_session
from mirror.sync.job import SyncBusy
from mirror.sync.syncer import SyncReport

LEASE_WAIT = 600.0


def run(config: Config, args: argparse.Namespace) -> int:
    try:
        session = sync_session(config)
    except ValueError as exc:
        print(f"mirror: sync: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(session, args))
    except KeyboardInterrupt:
        return 130


async def _run(session: SyncSession, args: argparse.Namespace) -> int:
    job = session.job
    try:
        if args.once:
            try:
                reports = await job.run_once(force=True, wait=LEASE_WAIT)
            except SyncBusy:
                print(
                    f"mirror: sync: another process kept syncing for {LEASE_WAIT:g}s; try again",
                    file=sys.stderr,
                )
                return 1
            _print(reports, args.quiet)
            return 0 if all(report.ok for report in reports) else 1
        while True:
            try:
                _print(await job.run_once(), args.quiet)
            except SyncBusy:
                pass
            await asyncio.sleep(job.tick)
    finally:
        await session.aclose()


def _print(reports: list[SyncReport], quiet: bool) -> None:
    for report in reports:
        if not quiet or not report.ok:
            print(f"mirror: sync {report.summary()}", file=sys.stderr)
        if not quiet:
            for failure in report.failures[1:]:
                print(f"mirror: sync {report.target.upstream}: {failure}", file=sys.stderr)
