"""Reading a Prometheus text exposition in tests: samples by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` (``x_total``, ``x_bucket``, ...) with its labels."""
    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels; None when absent."""
    for found, value in samples(text, name):
        if found == labels:
            return value
    return None
