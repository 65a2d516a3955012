"""BENCHMARKS.md: the table, how it was measured, on what, and the raw samples."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.results import Row
from bench.settings import Scale, human_size
from bench.table import render

METHOD = """\
Every workload runs alternately on mirror and on the reference, the side going first
swapping every round (mirror, reference, reference, mirror, ...), with dirty pages
written out (`sync`) before each measurement; each cell is the median of the rounds.
Ratio is mirror / reference; a bar reading `ratio` compares that ratio, one reading
`mirror` the mirror's own value.

- Servers: both on 127.0.0.1 with filesystem storage in a temporary directory and access
  logs on; mirror with http.server {server} and 1 worker, the reference (CNCF
  Distribution) with `storage.cache.blobdescriptor: inmemory`. Pull-through workloads
  (1-6, 8) use both in proxy mode against one shared upstream, a third docker-registry
  seeded with skopeo; 7 and 9 use both as standalone registries.
- 1, 2, 8: curl into /dev/null (2: parallel curl processes, aggregate = bytes / wall
  time; 8: curl's time_starttransfer on a blob neither cache has seen).
- 3: GET by tag with wrk (-t2), HEAD by digest with ApacheBench (-k -i), both over the
  same number of keep-alive connections. wrk 4.1 cannot measure HEAD: its parser waits
  for a body after a HEAD response with Content-Length (wg/wrk#198).
- 4-7: skopeo copy to a `dir:` target (4-6) or from an OCI layout (7); 4 and 5 use a new
  image per round, so every pull through a cache is cold. 5 also counts the bytes the
  upstream sent for the image's blobs, from the upstream's access log.
- 9: seeded through the HTTP API (manifest PUTs sharing one config blob); latency is
  wrk's median on one connection, the rate wrk over many connections.
- 10: VmRSS summed over the server's process tree, sampled every 20 ms during 2 and 5.
- 11: `mirror garbage-collect` and `docker-registry garbage-collect` (no flags, output
  to a file) on hard-linked copies of one store written directly on disk; wall time and
  `ru_maxrss` of the process; both must leave the same blobs.
"""


def scale_line(scale: Scale) -> str:
    return (
        f"Scale: {scale.name} ({scale.rounds} round{'s' if scale.rounds > 1 else ''}, "
        f"{human_size(scale.blob_size)} blobs, {scale.rate_seconds} s per rate measurement, "
        f"{scale.few:,} vs {scale.many:,} list entries, "
        f"{scale.gc_shape.manifests:,} manifests to garbage-collect)."
    )


def markdown(
    rows: Sequence[Row],
    *,
    command: str,
    scale: Scale,
    machine: Sequence[tuple[str, str]],
    notes: Sequence[str],
    elapsed: float,
    server: str = "granian",
) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    missed = [row for row in rows if row.met is False]
    errors = [row for row in rows if row.error is not None]
    summary = f"{len(rows) - len(missed) - len(errors)} of {len(rows)} bars met"
    if missed:
        summary += "; missed: " + "; ".join(f"#{r.number} {r.metric}" for r in missed)
    if errors:
        summary += f"; {len(errors)} workload(s) failed"
    lines = [
        "# Benchmarks: mirror vs the reference registry",
        "",
        f"Measured {stamp} in {elapsed:.0f} s with:",
        "",
        "```",
        command,
        "```",
        "",
        scale_line(scale),
        "",
        render(rows),
        "",
        summary + ".",
        "",
        "## Method",
        "",
        METHOD.format(server=server),
        "## Machine",
        "",
        "| what | value |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in machine),
        "",
        "## Raw samples",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    return "\n".join(lines)
