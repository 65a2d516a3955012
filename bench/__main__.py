"""`python -m bench [--quick] [--only 1,3,...] [--out BENCHMARKS.md]`."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.env import MIRROR_SERVER, Env
from bench.machine import load_average, machine_info
from bench.plan import parse_only, run
from bench.report import markdown, scale_line
from bench.settings import FULL, QUICK
from bench.table import render

REQUIRED = ("docker-registry", "skopeo", "curl", "wrk", "ab")
HINT = {"ab": "apache2-utils"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark mirror against docker-registry."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one round (under a minute)"
    )
    parser.add_argument(
        "--only", metavar="N,N,...", help="run only these workloads (numbers as in the README)"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the report (Markdown) here")
    parser.add_argument(
        "--server",
        choices=("granian", "uvicorn"),
        default=MIRROR_SERVER,
        help=f"mirror's http.server (default: {MIRROR_SERVER}, mirror's own default)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every selected workload was measured, 1 otherwise."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        numbers = parse_only(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    missing = [name for name in REQUIRED if shutil.which(name) is None]
    if missing:
        packages = " ".join(HINT.get(name, name) for name in missing)
        print(
            f"bench: missing programs: {', '.join(missing)} (apt-get install {packages})",
            file=sys.stderr,
        )
        return 2
    scale = QUICK if args.quick else FULL
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    print(f"bench: {scale_line(scale)}", file=sys.stderr)
    started = time.perf_counter()
    load_at_start = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    try:
        with ExitStack() as stack:
            env = Env(scale, workdir, stack, server=args.server)
            rows = run(env, numbers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(render(rows))
    if args.out:
        text = markdown(
            rows,
            command=command,
            scale=scale,
            machine=machine_info(load_at_start),
            notes=env.notes,
            elapsed=elapsed,
            server=args.server,
        )
        Path(args.out).write_text(text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    return 1 if any(row.error is not None for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
