"""Command line: `mirror serve`, `mirror check-config`, `mirror garbage-collect`,
`mirror export`, `mirror import`, `mirror sync`, `mirror du`, `mirror --version`, and
the client verbs (no configuration): `copy`, `ls`, `catalog`, `inspect`, `digest`, `tag`,
`delete`.

Only the dispatch is here: a client verb goes to `commands/clientmain.py` without the
server side (configuration, store, ASGI app, Redis) being imported - a second or more of
start-up on a busy machine - whether the command runs as `python -m mirror` or as the
installed `mirror` script (which imports `main`); anything else to
`commands/servercli.py`.
"""

from __future__ import annotations

import sys

from mirror.commands import clientmain


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] and args[0] in clientmain.VERBS:
        return clientmain.main(args)
    from mirror.commands import servercli

    return servercli.main(args)


if __name__ == "__main__":
    sys.exit(main())
