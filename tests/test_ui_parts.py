"""The dashboard's parts on their own: the catalog at 10,000 repositories, the cache
figures read back from metrics, the saved-bytes history and its plot, the access seam."""

from __future__ import annotations

import json
import re

import pytest

from mirror.coordination.metadata import MemoryMetadataStore
from mirror.metrics import MetricsRegistry
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.types import Reference
from mirror.ui.access import EVERYTHING, PULL
from mirror.ui.catalog import LOCAL, Catalog, UpstreamInfo
from mirror.ui.figures import Samples, cache_figures
from mirror.ui.history import SavingsHistory, Totals, cumulative
from mirror.ui.plot import MAX_POINTS, Line, line_plot
from mirror.ui.units import human_bytes
from tests.support.oci import manifest_bytes

pytestmark = pytest.mark.anyio

UPSTREAMS = (
    UpstreamInfo("docker.io", "docker.io", "https://registry-1.docker.io"),
    UpstreamInfo("ghcr.io", "ghcr.io", "https://ghcr.io"),
)


async def seeded_store(names: list[str]) -> Store:
    store = Store(create_driver("inmemory", {}))
    raw = manifest_bytes(b"{}", [])
    for name in names:
        await store.repository(name).put_manifest(Reference(tag="latest"), raw, None, verify=False)
    return store


class OnlyPrefix:
    """A permit allowing pulls under one prefix."""

    unrestricted = False

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.asked = 0

    async def may(self, name: str, action: str) -> bool:
        self.asked += 1
        return action == PULL and name.startswith(self.prefix)


async def test_ten_thousand_repositories_are_grouped_searched_and_paged() -> None:
    names = (
        [f"team{i % 10}/svc-{i:05d}" for i in range(4000)]
        + [f"docker.io/library/img-{i:05d}" for i in range(5000)]
        + [f"ghcr.io/org/tool-{i:05d}" for i in range(1000)]
    )
    catalog = Catalog(await seeded_store(names), UPSTREAMS)
    first = await catalog.page(EVERYTHING)
    assert first.total == 10_000 and first.pages == 200 and len(first.rows) == 50
    assert [(g.key, g.count) for g in first.groups] == [
        (LOCAL, 4000),
        ("docker.io", 5000),
        ("ghcr.io", 1000),
    ]
    assert first.rows[0].name == "docker.io/library/img-00000"  # sorted
    last = await catalog.page(EVERYTHING, page=200)
    assert last.rows[-1].name == "team9/svc-03999" and last.rows[-1].group == LOCAL

    cached = await catalog.page(EVERYTHING, group="ghcr.io", page=20)
    assert cached.total == 1000 and cached.pages == 20
    assert [r.name for r in cached.rows][-1] == "ghcr.io/org/tool-00999"
    assert {r.group for r in cached.rows} == {"ghcr.io"}

    found = await catalog.page(EVERYTHING, query="team SVC-0012")
    assert found.total == 10 and all("svc-0012" in r.name for r in found.rows)
    assert (found.groups[0].key, found.groups[0].count) == (LOCAL, 10)
    assert (await catalog.page(EVERYTHING, query="docker.io")).groups[1].count == 5000

    permit = OnlyPrefix("team3/")
    mine = await catalog.page(permit)
    assert mine.total == 400 and all(r.name.startswith("team3/") for r in mine.rows)
    assert [g.count for g in mine.groups] == [400, 0, 0]


async def test_the_grouping_follows_new_repositories() -> None:
    store = await seeded_store(["a/one"])
    catalog = Catalog(store, UPSTREAMS)
    assert (await catalog.page(EVERYTHING)).total == 1
    await store.repository("docker.io/library/b").put_manifest(
        Reference(tag="x"), manifest_bytes(b"{}", []), None, verify=False
    )
    page = await catalog.page(EVERYTHING)
    assert [(r.name, r.group) for r in page.rows] == [
        ("a/one", LOCAL),
        ("docker.io/library/b", "docker.io"),
    ]
    # A name whose first part only looks like an upstream is local.
    assert catalog.group_of("docker.io") == LOCAL
    assert catalog.group_of("docker.iox/a") == LOCAL


def test_cache_figures_add_up_the_metrics_by_upstream() -> None:
    metrics = MetricsRegistry()
    served = metrics.counter("mirror_served_bytes_total", "", ("source", "upstream"))
    served.inc("store", "docker.io", amount=3000)
    served.inc("store", "", amount=500)  # a local repository: no upstream saved anything
    served.inc("download", "docker.io", amount=1000)
    fetched = metrics.counter("mirror_upstream_blob_bytes_total", "", ("upstream",))
    fetched.inc("docker.io", amount=1000)
    fetched.inc("ghcr.io", amount=250)
    hits = metrics.counter("mirror_cache_hits_total", "", ("kind",))
    misses = metrics.counter("mirror_cache_misses_total", "", ("kind",))
    hits.inc("blob", amount=3)
    misses.inc("blob", amount=1)
    misses.inc("manifest", amount=4)
    metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",), mode="livemax").set(
        "ghcr.io", value=1
    )
    metrics.gauge("mirror_upstream_ratelimit_remaining", "", ("upstream",), mode="livemin").set(
        "docker.io", value=87
    )
    metrics.gauge("mirror_fills_active", "").set(value=2)
    queued = metrics.counter("mirror_notifications_queued_total", "", ("endpoint",))
    queued.inc("audit", amount=7)
    metrics.gauge("mirror_notifications_pending", "", ("endpoint",), mode="livemax").set(
        "audit", value=2
    )
    metrics.counter("mirror_gc_runs_total", "", ("outcome",)).inc("done", amount=2)
    metrics.gauge("mirror_cache_size_bytes", "", mode="livemax").set(value=750)
    metrics.gauge("mirror_cache_max_bytes", "", mode="livemax").set(value=1000)

    figures = cache_figures(Samples.from_registry(metrics), UPSTREAMS)
    hub, ghcr = figures.upstreams
    assert (hub.saved, hub.fetched, hub.streamed) == (3000, 1000, 1000)
    assert hub.breaker == "closed" and hub.reachable and hub.ratelimit_remaining == 87
    assert ghcr.breaker == "half-open" and not ghcr.reachable
    assert ghcr.ratelimit_remaining is None and ghcr.fetched == 250
    assert figures.saved == 3000 and figures.fetched == 1250
    assert figures.served_store == 3500
    assert figures.byte_ratio == pytest.approx(3000 / 4250)
    assert figures.hit_ratio("blob") == 0.75 and figures.hit_ratio() == 3 / 8
    assert figures.hit_ratio("manifest") == 0.0
    assert figures.in_flight == 2
    (audit,) = figures.endpoints
    assert (audit.name, audit.queued, audit.pending) == ("audit", 7, 2)
    life = figures.lifecycle
    assert life.any and life.gc_runs == 2 and life.usage == 0.75
    assert life.evictions is None and life.gc_freed is None  # not there: not shown


def test_no_traffic_has_no_ratio_rather_than_a_division_by_zero() -> None:
    figures = cache_figures(Samples.from_registry(MetricsRegistry()), UPSTREAMS)
    assert figures.hit_ratio() is None and figures.byte_ratio is None
    assert [u.breaker for u in figures.upstreams] == ["closed", "closed"]
    assert not figures.lifecycle.any and figures.lifecycle.usage is None


async def test_history_records_buckets_and_adds_up_across_restarts() -> None:
    metadata = MemoryMetadataStore()
    now = [1_000_000.0]
    totals = [Totals(0, 0)]
    history = SavingsHistory(
        metadata, lambda: totals[0], interval=60, keep=3600, clock=lambda: now[0]
    )
    for saved, fetched in ((100, 50), (300, 80), (40, 10)):  # the last after a restart
        totals[0] = Totals(saved, fetched)
        await history.record()
        now[0] += 60
    await history.record()  # the same bucket twice: the last write wins
    totals[0] = Totals(90, 10)
    points = await history.series()
    assert [(p.saved, p.fetched) for p in points] == [
        (100, 50),
        (300, 80),
        (340, 90),
        (340, 90),
        (390, 90),  # now, not yet recorded
    ]
    assert points == sorted(points, key=lambda p: p.at)
    keys = [key async for key, _ in metadata.scan("ui:savings:")]
    assert len(keys) == 4


async def test_a_damaged_history_entry_is_skipped() -> None:
    metadata = MemoryMetadataStore()
    await metadata.set("ui:savings:000000000001", b"not json")
    await metadata.set("ui:savings:000000000002", json.dumps({"at": 5.0}).encode())
    history = SavingsHistory(metadata, lambda: Totals(7, 3), clock=lambda: 10.0)
    assert [(p.at, p.saved, p.fetched) for p in await history.series()] == [(10.0, 7, 3)]


def test_cumulative_takes_a_drop_as_a_restart() -> None:
    points = cumulative([(1, 10, 1), (2, 5, 2), (3, 8, 2)])
    assert [(p.saved, p.fetched) for p in points] == [(10, 1), (15, 2), (18, 2)]


def test_the_plot_is_accessible_svg_and_thinned() -> None:
    times = [float(t) for t in range(5000)]
    svg = line_plot(
        "saved <&> fetched",
        times,
        [Line("saved", "saved", times), Line("fetched", "fetched", [t / 2 for t in times])],
    )
    assert svg.startswith('<svg class="plot"') and 'role="img"' in svg
    assert '<title id="plot-title">saved &lt;&amp;&gt; fetched</title>' in svg
    assert f"saved {human_bytes(4999)}" in svg and "fetched" in svg
    for points in re.findall(r'points="([^"]+)"', svg):
        assert len(points.split()) <= MAX_POINTS + 1
    one = line_plot("x", [5.0], [Line("saved", "saved", [1.0])])
    assert "<circle" in one and "polyline" not in one
    assert "<svg" in line_plot("x", [], [Line("saved", "saved", [])])


def test_sizes_read_in_binary_units() -> None:
    assert [human_bytes(v) for v in (None, 0, 1023, 1024, 3 * 2**20, 5 * 2**40)] == [
        "-",
        "0 B",
        "1023 B",
        "1.0 KiB",
        "3.0 MiB",
        "5.0 TiB",
    ]
