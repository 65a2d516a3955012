"""Render the results as one Markdown table (readable as plain text too)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.results import Row, number

HEADER = ("#", "workload", "metric", "mirror", "reference", "ratio", "bar", "met?")


def cells(row: Row) -> tuple[str, ...]:
    if row.error is not None:
        message = " ".join(row.error.split())
        if len(message) > 120:
            message = message[:117] + "..."
        return (str(row.number), row.workload, "-", "-", "-", "-", "-", f"ERROR: {message}")
    mirror = "-" if row.mirror is None else number(row.mirror, row.digits)
    reference = "-" if row.reference is None else number(row.reference, row.digits)
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    met = {True: "yes", False: "NO", None: "n/a"}[row.met]
    return (
        str(row.number),
        row.workload,
        row.metric,
        mirror,
        reference,
        ratio,
        row.bar.text(),
        met,
    )


def render(rows: Sequence[Row]) -> str:
    """The table, columns padded to equal width, one row per line."""
    body = [cells(row) for row in rows]
    widths = [max(len(line[i]) for line in [HEADER, *body]) for i in range(len(HEADER))]
    right = {0, 3, 4, 5}

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if i in right else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(HEADER), rule, *(line(values) for values in body)])
