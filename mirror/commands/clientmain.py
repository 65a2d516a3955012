"""The client verbs' own way in: `python -m mirror copy ...` (and the other verbs) runs
without importing the server side (configuration, store, ASGI app), which would cost
the start-up of every command - a second or more on a busy machine.

`mirror/__main__.py` comes here first when the first argument is a client verb; the full
parser (`mirror --help`) lists the same verbs with the same arguments.
"""

from __future__ import annotations

import sys

# httpx imports its own command line (click, rich, pygments) when it can; the verbs never
# use it, and it is a third of their start-up. Only done before httpx is imported (this
# process is a client command), so nothing else is affected.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import argparse

from mirror import __version__
from mirror.commands import copy, images

VERBS = frozenset({"copy", *images.VERBS})


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    copy.add_parser(commands)
    images.add_parsers(commands)


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "copy":
        return copy.run_copy(args)
    return images.run_verb(args)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mirror", description="A container registry client.")
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parsers(commands)
    return dispatch(parser.parse_args(argv))
