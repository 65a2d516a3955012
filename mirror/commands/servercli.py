"""The server side of the command line: `serve`, `check-config`, `garbage-collect`,
`export`, `import`, `sync`, `du`, `--version` and `--help` (whose parser lists the
client verbs too, and dispatches them when `main` is given one). `mirror/__main__.py`
comes here for everything but a client verb.

The config file is, in order: `--config PATH` (or a positional PATH, as in
`registry serve /etc/docker/registry/config.yml`), `$REGISTRY_CONFIGURATION_PATH`,
`./config.yml` when it exists, else the embedded default. A configuration error prints
one line to stderr and exits with status 2. `garbage-collect` exits with status 1 when
the collection failed or hit errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import yaml

from mirror import __version__, logs
from mirror.commands import clientmain, storecli
from mirror.config import ENV_CONFIG_PATH, Config, ConfigError, load_config, with_server
from mirror.durations import parse_duration
from mirror.server import APP_TARGET, ListenError, serve

LOCAL_CONFIG = "config.yml"


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in clientmain.VERBS:
        return clientmain.dispatch(args)
    config_file = getattr(args, "config_file", None)
    if args.config and config_file and args.config != config_file:
        parser.error("give the config file once: either --config PATH or PATH")
    try:
        path = _config_path(args.config or config_file)
        config = load_config(path)
        if args.command == "check-config":
            _check_auth(config)
            yaml.safe_dump(config.redacted(), sys.stdout, sort_keys=False)
            return 0
        if args.command in storecli.RUNNERS:
            return storecli.run(args.command, config, args)
        if args.command == "garbage-collect":
            return _garbage_collect(config, args)
        if args.server:
            config = with_server(config, args.server)
        _check_auth(config)  # here, not once per worker: one line, exit status 2
        where = f"config file {path}" if path else "the embedded default config"
        scheme = "https" if config.http.tls else "http"
        workers = f"{config.http.workers} worker{'s' if config.http.workers > 1 else ''}"
        # This process's lines in the configured format too (JSON logs stay JSON).
        logs.configure(config.log.formatter, config.log.fields, config.log.level)
        logging.getLogger("mirror").info(
            "serving %s://%s with %s (%s, %s)",
            scheme,
            config.http.addr,
            where,
            config.http.server,
            workers,
        )
        serve(config, path, app_target=args.app)
    except ConfigError as exc:
        print(f"mirror: config error: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"mirror: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirror", description="A pull-through caching container registry."
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the registry")
    check_parser = commands.add_parser(
        "check-config", help="print the effective configuration (passwords hidden) as YAML"
    )
    gc_parser = commands.add_parser(
        "garbage-collect",
        help="delete blobs no manifest references (registry:2's command)",
        description="Mark every blob a kept manifest references and delete the rest."
        " Run it on a stopped or read-only registry, or give a --delay that covers the"
        " pushes in flight.",
    )
    for sub in (serve_parser, check_parser, gc_parser):
        sub.add_argument("config_file", nargs="?", metavar="PATH", help="config file")
        sub.add_argument("--config", metavar="PATH", help="config file")
    gc_parser.add_argument(
        "-d", "--dry-run", action="store_true", help="report what would be deleted, delete nothing"
    )
    gc_parser.add_argument(
        "-m",
        "--delete-untagged",
        action="store_true",
        help="also delete manifests no tag reaches (index children and referrers of kept"
        " manifests stay)",
    )
    gc_parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the summary and problems"
    )
    gc_parser.add_argument(
        "--delay",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="keep content modified within DURATION before the start (e.g. 1h; default 0)",
    )
    storecli.add_parsers(commands)
    clientmain.add_parsers(commands)
    serve_parser.add_argument(
        "--server", choices=("granian", "uvicorn"), help="override http.server"
    )
    serve_parser.add_argument(
        "--app",
        default=APP_TARGET,
        metavar="MODULE:FACTORY",
        help=f"zero-argument ASGI app factory to serve (default: {APP_TARGET})",
    )
    return parser


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_auth(config: Config) -> None:
    """What the auth section's controllers would refuse (ConfigError). The auth stack is
    imported only when there is an auth section: this process only spawns the workers."""
    if config.auth is not None:
        from mirror.proxy.authenticating import check_auth

        check_auth(config)


def _garbage_collect(config: Config, args: argparse.Namespace) -> int:
    from mirror.lifecycle.collector import GCOptions
    from mirror.lifecycle.command import run_garbage_collect
    from mirror.store.drivers import create_driver

    storage = config.storage
    params = {"rootdirectory": storage.root_directory} if storage.driver == "filesystem" else {}
    leases = None
    if storage.driver == "filesystem" and not config.cache.ephemeral:
        leases = os.path.join(config.cache.directory, "leases")
    options = GCOptions(
        dry_run=args.dry_run, delete_untagged=args.delete_untagged, delay=args.delay
    )
    return run_garbage_collect(
        create_driver(storage.driver, params), options, lease_directory=leases, quiet=args.quiet
    )


def _config_path(given: str | None) -> str | None:
    path = given or os.environ.get(ENV_CONFIG_PATH) or None
    if path is None and os.path.isfile(LOCAL_CONFIG):
        path = LOCAL_CONFIG
    return path
