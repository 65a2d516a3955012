"""The parsers of the commands that work on a store without serving it (`export`,
`import`, `sync`, `du`), and their dispatch.

Their modules (`commands/archive.py`, `sync.py`, `du.py`) reach the store, the
pull-through views and the archive format; they are imported only when their command
runs, so that `mirror serve`'s own process - which spawns the workers that import the app
- loads none of that.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Final

from mirror.config import Config

# command -> (module, function(config, args) -> exit status)
RUNNERS: Final = {
    "export": ("mirror.commands.archive", "run_export"),
    "import": ("mirror.commands.archive", "run_import"),
    "sync": ("mirror.commands.sync", "run"),
    "du": ("mirror.commands.du", "run"),
}


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _archive_parsers(commands)
    _sync_parser(commands)
    _du_parser(commands)


def run(command: str, config: Config, args: argparse.Namespace) -> int:
    """Run the store command `command` (one of `RUNNERS`)."""
    module, name = RUNNERS[command]
    runner: Callable[[Config, argparse.Namespace], int] = getattr(
        importlib.import_module(module), name
    )
    return runner(config, args)


def _archive_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="write the store, or some repositories and tags, as one OCI image layout tar",
        description="Write the store (or the named repositories and tags, as stored: "
        "docker.io/library/alpine:3.19) as one OCI image layout tar for `mirror import`.",
    )
    export.add_argument("--config", metavar="PATH", help="config file")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="the archive (default: standard output)"
    )
    export.add_argument(
        "--since",
        metavar="PREVIOUS",
        help="leave out the blobs an earlier archive covers (import that one first)",
    )
    export.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    export.add_argument("refs", nargs="*", metavar="REPO[:TAG]", help="what to export")
    load = commands.add_parser(
        "import",
        help="load an archive made by `mirror export` into the store",
        description="Load an archive into the store, verifying every digest and size. "
        "Idempotent; run it again after an interruption to finish.",
    )
    load.add_argument("--config", metavar="PATH", help="config file")
    load.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    load.add_argument("file", metavar="FILE", help="the archive (- for standard input)")


def _sync_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser(
        "sync",
        help="cache the images the sync section names (what serve does in the background)",
        description="Sync every sync.content entry: new and moved tags are fetched through "
        "the pull-through cache, unchanged ones cost one HEAD. Without --once, keep syncing "
        "each entry once per its interval until interrupted.",
    )
    sync.add_argument("config_file", nargs="?", metavar="PATH", help="config file")
    sync.add_argument("--config", metavar="PATH", help="config file")
    sync.add_argument("--once", action="store_true", help="one pass over every entry, then exit")
    sync.add_argument("-q", "--quiet", action="store_true", help="print only failures")


def _du_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    du = commands.add_parser(
        "du",
        help="disk usage: repositories with unique and shared bytes, local and cached",
        description="Walk the store and report each repository's bytes (unique to it, "
        "shared with others), local against cached per upstream, and when each was last "
        "used (the access times eviction and online garbage collection read).",
    )
    du.add_argument("config_file", nargs="?", metavar="PATH", help="config file")
    du.add_argument("--config", metavar="PATH", help="config file")
    du.add_argument("--json", action="store_true", help="print the report as one JSON object")
