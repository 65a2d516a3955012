"""`mirror du`: what the store holds, per repository, local and cached per upstream."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mirror.config import Config
from mirror.coordination.accesslog import MetadataAccessLog
from mirror.lifecycle.usage import UsageReport, usage
from mirror.proxy.app import store_access


def run(config: Config, args: argparse.Namespace) -> int:
    report = asyncio.run(_report(config))
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(report.lines()) + "\n")
    return 0


async def _report(config: Config) -> UsageReport:
    access = store_access(config)
    try:
        log = MetadataAccessLog(access.metadata)
        return await usage(access.store.driver, access.origin_of, log)
    finally:
        await access.aclose()
