"""The dashboard's pages through the ASGI transport: a mirror built by `create_app` from
configuration (one upstream in process, a local namespace `local/`), pushes and pulls
through its API, then what each page shows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.policyfile import parse_policy
from mirror.cache.pullthrough.resolver import MirrorResolver
from mirror.config import parse_config
from mirror.coordination.metadata import MetadataStore
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app, standalone_app
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.view import LocalResolver
from mirror.types import OCI_INDEX, OCI_MANIFEST, Reference
from mirror.ui.access import controller_permissions
from mirror.ui.app import Dashboard, DashboardParts
from tests.events_helpers import eventually
from tests.support.lifespan import lifespan
from tests.support.notified import endpoint, notified_registry
from tests.support.oci import (
    digest_of,
    index_bytes,
    manifest_bytes,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
)
from tests.support.upstreams import MirrorRig, make_rig
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio

HTML = {"Accept": "text/html,application/xhtml+xml"}
ORIGIN = {"Origin": "http://mirror.test"}
OCI_ACCEPT = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig()
    yield rig
    await rig.aclose()


async def push_rich_image(client: httpx.AsyncClient, name: str, tag: str) -> tuple[str, str]:
    """An image whose config has entrypoint, env and labels; (manifest, config) digests."""
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "config": {
                "Entrypoint": ["/bin/serve", "--port=80"],
                "Cmd": ["--verbose"],
                "Env": ["PATH=/usr/bin", "MODE=<prod>"],
                "Labels": {"org.opencontainers.image.source": "https://example.test/app"},
            },
        }
    ).encode()
    layers = [random_bytes(3000, 1), random_bytes(5000, 2)]
    for blob in (config, *layers):
        await push_blob(client, name, blob)
    raw = manifest_bytes(config, layers)
    assert (await push_manifest(client, name, tag, raw)).status_code == 201
    return digest_of(raw), digest_of(config)


async def pull_through(rig: MirrorRig, name: str, tag: str, *, twice: bool = True) -> None:
    """Pull `name:tag` through the mirror (manifest, config, layers), twice by default:
    the second time from the cache."""
    for _ in range(2 if twice else 1):
        r = await rig.mirror.get(f"/v2/{name}/manifests/{tag}", headers=OCI_ACCEPT)
        assert r.status_code == 200, r.text
        doc = r.json()
        for blob in [doc["config"], *doc["layers"]]:
            got = await rig.mirror.get(f"/v2/{name}/blobs/{blob['digest']}")
            assert got.status_code == 200
        await rig.fills.drain()


def text_of(html: str) -> str:
    """The page's visible text, tags removed and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- mounting ------------------------------------------------------------------------


async def test_a_browser_asking_for_the_root_is_sent_to_the_dashboard(rig: MirrorRig) -> None:
    r = await rig.mirror.get("/", headers=HTML)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    r = await rig.mirror.get("/ui")
    assert r.status_code == 308 and r.headers["location"] == "/ui/"
    # A client that is not a browser sees the API's answer, as before.
    r = await rig.mirror.get("/")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert (await rig.mirror.get("/v2/")).status_code == 200


async def test_pages_carry_a_viewport_and_a_strict_content_policy(rig: MirrorRig) -> None:
    r = await rig.mirror.get("/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in r.text
    assert '<html lang="en">' in r.text and '<main id="main">' in r.text
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'self'
    assert "default-src 'self'" in r.headers["content-security-policy"]
    # Everything the page loads is served here (air-gapped): no other origin.
    assert not re.search(r'(src|href)="(https?:)?//', r.text)
    for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', r.text):
        got = await rig.mirror.get(asset)
        assert got.status_code == 200 and got.content, asset
    htmx = await rig.mirror.get("/ui/static/htmx-2.0.11.min.js")
    assert b"htmx" in htmx.content[:200]


async def test_the_dashboard_can_be_turned_off(tmp_path: Path) -> None:
    config = parse_config("storage: inmemory\nhttp:\n  ui:\n    enabled: false\n", {})
    app = create_app(config, MetricsRegistry())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
    ) as client:
        r = await client.get("/ui/", headers=HTML)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
        r = await client.get("/", headers=HTML)
        assert r.status_code == 404
        for hook in app.shutdown:
            await hook()


# -- repositories ----------------------------------------------------------------------


async def test_repositories_are_grouped_local_and_cached_per_upstream(rig: MirrorRig) -> None:
    await push_image(rig.mirror, "local/team/app", "v1", seed=1)
    await push_image(rig.upstream, "library/alpine", "3.19", seed=2)
    await pull_through(rig, "alpine", "3.19", twice=False)
    r = await rig.mirror.get("/ui/")
    page = text_of(r.text)
    assert "local/team/app local 1" in page
    assert "docker.io/library/alpine cache of docker.io 1" in page  # its one tag
    assert "local 1" in page and "cached from docker.io 1" in page
    assert 'href="/ui/repo/docker.io/library/alpine"' in r.text

    only_cached = text_of((await rig.mirror.get("/ui/?group=docker.io")).text)
    assert "docker.io/library/alpine" in only_cached and "local/team/app" not in only_cached
    only_local = text_of((await rig.mirror.get("/ui/?group=")).text)
    assert "local/team/app" in only_local and "library/alpine" not in only_local


async def test_search_matches_every_word_and_pages_the_rest(rig: MirrorRig) -> None:
    for i in range(60):
        await push_image(rig.mirror, f"local/svc-{i:02d}", "v1", seed=i, layers=1)
    await push_image(rig.mirror, "local/tools/alpha", "v1", seed=99, layers=1)
    found = text_of((await rig.mirror.get("/ui/?q=TOOLS+alp")).text)
    assert "local/tools/alpha" in found and "svc-" not in found
    assert "1 repository matching" in found

    first = (await rig.mirror.get("/ui/?q=svc")).text
    assert "60 repositories matching" in text_of(first) and "page 1 of 2" in text_of(first)
    assert "local/svc-00" in first and "local/svc-49" in first and "local/svc-50" not in first
    second = (await rig.mirror.get("/ui/?q=svc&page=2")).text
    assert "local/svc-50" in second and "local/svc-59" in second and "local/svc-49" not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second
    # A page past the end shows the last one; a page that is not a number, the first.
    assert "local/svc-59" in (await rig.mirror.get("/ui/?q=svc&page=99")).text
    assert "local/svc-00" in (await rig.mirror.get("/ui/?q=svc&page=-x")).text
    nothing = text_of((await rig.mirror.get("/ui/?q=zzz")).text)
    assert "0 repositories" in nothing and "No repository matches" in nothing


# -- a repository and an image ---------------------------------------------------------


async def test_a_repository_lists_its_tags_with_what_they_hold(rig: MirrorRig) -> None:
    digest, _ = await push_rich_image(rig.mirror, "local/app", "1.0")
    await push_image(rig.mirror, "local/app", "2.0", seed=5, layers=1, layer_size=1000)
    r = await rig.mirror.get("/ui/repo/local/app")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "2 tags" in page
    assert f"1.0 {digest[:19]}" in page  # sha256: and 12 hex digits
    assert "linux/arm64" in page and "2026-01-02T03:04:05Z" in page
    assert "linux/amd64" in page  # the second image's config
    size = len(manifest_bytes(b"x", [])) > 0  # sizes are shown in units
    assert size and re.search(r"\d+\.\d KiB", page)
    assert f'href="/ui/image/local/app@{digest}"' in r.text
    assert "docker pull mirror.test/local/app:1.0" in page
    assert re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)  # last pushed


async def test_an_image_shows_manifest_layers_config_referrers_and_pull(rig: MirrorRig) -> None:
    digest, _ = await push_rich_image(rig.mirror, "local/app", "1.0")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 0}
    r = await rig.mirror.get(f"/v2/local/app/manifests/{digest}", headers=OCI_ACCEPT)
    subject["size"] = len(r.content)
    for seed, kind in ((10, "application/vnd.dev.cosign.sig"), (11, "application/spdx+json")):
        empty = b"{}"
        await push_blob(rig.mirror, "local/app", empty)
        layer = random_bytes(100, seed)
        await push_blob(rig.mirror, "local/app", layer)
        raw = manifest_bytes(
            empty,
            [layer],
            subject=subject,
            artifact_type=kind,
            config_type="application/vnd.oci.empty.v1+json",
        )
        got = await push_manifest(rig.mirror, "local/app", digest_of(raw), raw)
        assert got.status_code == 201, got.text
    r = await rig.mirror.get(f"/ui/image/local/app@{digest}")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "&#34;mediaType&#34;: &#34;application/vnd.oci.image.manifest.v1+json&#34;" in r.text
    assert "Entrypoint" in page and "/bin/serve" in page and "--port=80" in page
    assert "MODE=&lt;prod&gt;" in r.text  # escaped, never markup
    assert "org.opencontainers.image.source" in page and "https://example.test/app" in page
    assert "application/vnd.dev.cosign.sig" in page and "application/spdx+json" in page
    assert f"docker pull mirror.test/local/app@{digest}" in page
    assert "2.9 KiB" in page and "4.9 KiB" in page  # the layers (3000 and 5000 bytes)
    assert "Tags 1.0" in page


async def test_an_index_lists_its_platforms(rig: MirrorRig) -> None:
    children = []
    for seed in (1, 2):
        raw, _ = await push_image(rig.mirror, "local/multi", f"child{seed}", seed=seed, layers=1)
        children.append((raw, OCI_MANIFEST))
    index = index_bytes(children)
    assert (
        await push_manifest(rig.mirror, "local/multi", "latest", index, OCI_INDEX)
    ).status_code == 201
    repo = text_of((await rig.mirror.get("/ui/repo/local/multi")).text)
    assert "index" in repo and "linux/amd64, linux/arm64" in repo
    r = await rig.mirror.get(f"/ui/image/local/multi@{digest_of(index)}")
    page = text_of(r.text)
    assert "Platforms" in page and "linux/amd64" in page and "linux/arm64" in page
    assert f'href="/ui/image/local/multi@{digest_of(children[0][0])}"' in r.text


async def test_what_is_not_there_or_not_valid_is_a_clear_error_page(rig: MirrorRig) -> None:
    await push_image(rig.mirror, "local/app", "v1", seed=1)
    cases = {
        "/ui/repo/local/none": 404,
        "/ui/repo/Local/UPPER": 400,
        "/ui/image/local/app@sha256:abc": 400,
        "/ui/image/local/app@sha256:" + "0" * 64: 404,
        "/ui/image/local/app": 400,
        "/ui/image/local/none@sha256:" + "0" * 64: 404,
        "/ui/nothing-here": 404,
    }
    for path, status in cases.items():
        r = await rig.mirror.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        assert "Traceback" not in r.text
    r = await rig.mirror.put("/ui/")
    assert r.status_code == 405


# -- the cache -------------------------------------------------------------------------


async def test_the_cache_page_shows_what_the_cache_saved(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/alpine", "3.19", seed=2, layers=2, layer_size=4096)
    await pull_through(rig, "alpine", "3.19")
    r = await rig.mirror.get("/ui/cache")
    assert r.status_code == 200
    page = text_of(r.text)
    config_size = len(json.dumps({"architecture": "amd64", "os": "linux", "seed": 2}))
    pulled = 2 * 4096 + config_size
    assert f"{pulled / 1024:.1f} KiB served from the cache" in page
    assert f"{pulled / 1024:.1f} KiB fetched from upstreams" in page
    assert "50.0% of cached bytes not fetched" in page
    assert "hit ratio (blobs 50.0%" in page
    assert "0 downloads in flight" in page and "0 stale serves" in page
    assert "docker.io http://upstream.test reachable breaker closed" in page
    assert '<svg class="plot"' in r.text and '<title id="plot-title">' in r.text


async def test_size_cap_eviction_and_collection_show_where_they_exist(rig: MirrorRig) -> None:
    assert "Storage, eviction" not in (await rig.mirror.get("/ui/cache")).text
    metrics = rig.metrics
    metrics.gauge("mirror_cache_size_bytes", "", mode="livemax").set(value=3 * 2**30)
    metrics.gauge("mirror_cache_max_bytes", "", mode="livemax").set(value=4 * 2**30)
    metrics.counter("mirror_evictions_total", "", ("reason",)).inc("size", amount=12)
    metrics.counter("mirror_evicted_bytes_total", "").inc(amount=2**30)
    metrics.counter("mirror_gc_runs_total", "", ("outcome",)).inc("done", amount=3)
    metrics.counter("mirror_gc_removed_total", "", ("kind",)).inc("blob", amount=40)
    metrics.counter("mirror_gc_freed_bytes_total", "").inc(amount=5 * 2**20)
    r = await rig.mirror.get("/ui/cache")
    page = text_of(r.text)
    assert "Cached content 3.0 GiB of 4.0 GiB (75.0%)" in page
    assert '<meter min="0" max="1" value="0.75"' in r.text
    assert "Evictions 12 images, 1.0 GiB" in page
    assert "Garbage collections 3 runs, 40 removed, 5.0 MiB freed" in page
    assert "Notification queues" not in page


async def test_notification_queues_show_where_endpoints_exist(rig: MirrorRig) -> None:
    metrics = rig.metrics
    metrics.counter("mirror_notifications_queued_total", "", ("endpoint",)).inc("audit", amount=9)
    metrics.counter("mirror_notifications_delivered_total", "", ("endpoint",)).inc(
        "audit", amount=6
    )
    metrics.gauge("mirror_notifications_pending", "", ("endpoint",), mode="livemax").set(
        "audit", value=3
    )
    page = text_of((await rig.mirror.get("/ui/cache")).text)
    assert "Notification queues" in page and "audit 3 9 6 0 0" in page


async def test_an_open_breaker_shows_the_upstream_unreachable(rig: MirrorRig) -> None:
    rig.metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",), mode="livemax").set(
        "docker.io", value=2
    )
    page = text_of((await rig.mirror.get("/ui/cache")).text)
    assert "docker.io http://upstream.test unreachable breaker open" in page


# -- deleting --------------------------------------------------------------------------


async def test_a_tag_and_a_manifest_can_be_deleted_from_the_page(rig: MirrorRig) -> None:
    _, first = await push_image(rig.mirror, "local/app", "v1", seed=1)
    await push_image(rig.mirror, "local/app", "v2", seed=2)
    page = (await rig.mirror.get("/ui/repo/local/app")).text
    assert 'action="/ui/delete"' in page and 'aria-label="Delete tag v1"' in page
    form = {"name": "local/app", "reference": "v2"}
    r = await rig.mirror.post("/ui/delete", data=form, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/ui/repo/local/app?deleted=v2"
    assert (await rig.mirror.get("/v2/local/app/manifests/v2")).status_code == 404
    shown = text_of((await rig.mirror.get(r.headers["location"])).text)
    assert "Deleted v2." in shown and "1 tag" in shown

    r = await rig.mirror.post(
        "/ui/delete", data={"name": "local/app", "reference": first}, headers=ORIGIN
    )
    assert r.status_code == 303
    assert (await rig.mirror.get(f"/v2/local/app/manifests/{first}")).status_code == 404
    assert (await rig.mirror.get("/v2/local/app/manifests/v1")).status_code == 404


async def test_deletes_need_a_page_of_this_host_and_a_real_reference(rig: MirrorRig) -> None:
    await push_image(rig.mirror, "local/app", "v1", seed=1)
    form = {"name": "local/app", "reference": "v1"}
    assert (await rig.mirror.post("/ui/delete", data=form)).status_code == 403
    evil = {"Origin": "http://evil.test"}
    assert (await rig.mirror.post("/ui/delete", data=form, headers=evil)).status_code == 403
    assert (await rig.mirror.get("/v2/local/app/manifests/v1")).status_code == 200
    bad = {"name": "local/app", "reference": "not a tag!"}
    assert (await rig.mirror.post("/ui/delete", data=bad, headers=ORIGIN)).status_code == 400
    gone = {"name": "local/app", "reference": "v9"}
    assert (await rig.mirror.post("/ui/delete", data=gone, headers=ORIGIN)).status_code == 404


async def test_cached_repositories_refuse_deletes_as_the_api_does(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/alpine", "3.19", seed=2)
    await pull_through(rig, "alpine", "3.19", twice=False)
    form = {"name": "docker.io/library/alpine", "reference": "3.19"}
    r = await rig.mirror.post("/ui/delete", data=form, headers=ORIGIN)
    assert r.status_code == 403 and "cache of docker.io" in r.text
    assert (
        await rig.mirror.get("/v2/alpine/manifests/3.19", headers=OCI_ACCEPT)
    ).status_code == 200


async def test_without_deletes_enabled_there_is_no_delete_button(tmp_path: Path) -> None:
    driver = create_driver("inmemory", {})
    app = standalone_app(driver)  # storage.delete.enabled: false
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
    ) as api:
        await push_image(api, "app", "v1")
    store = app.services.store
    dashboard = Dashboard(DashboardParts(store, app.services.resolver, MetricsRegistry()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dashboard.wrap(app)), base_url="http://mirror.test"
    ) as client:
        page = (await client.get("/ui/repo/app")).text
        assert "v1" in page and "/ui/delete" not in page
        form = {"name": "app", "reference": "v1"}
        assert (await client.post("/ui/delete", data=form, headers=ORIGIN)).status_code == 403
        assert (await client.get("/v2/app/manifests/v1")).status_code == 200


# -- authentication --------------------------------------------------------------------


async def test_with_auth_a_user_sees_and_deletes_only_what_they_may(tmp_path: Path) -> None:
    store = Store(create_driver("inmemory", {}), delete_enabled=True)
    resolver = LocalResolver(store)
    api = standalone_app(store.driver, delete_enabled=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://mirror.test"
    ) as client:
        for name in ("public/app", "team/secret", "team/other"):
            await push_image(client, name, "v1")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonderland', bcrypt.gensalt(4)).decode()}\n")
    policy = parse_policy(
        {
            "rules": [
                {"repository": "public/**", "allow": {"anonymous": ["pull"]}},
                {"repository": "team/secret", "allow": {"user:alice": ["pull", "delete"]}},
            ]
        }
    )
    controller = HtpasswdAccessController(realm="mirror", path=htpasswd, policy=policy)
    parts = DashboardParts(
        store, resolver, MetricsRegistry(), permissions=controller_permissions(controller)
    )
    app = Dashboard(parts).wrap(api)
    alice = httpx.BasicAuth("alice", "wonderland")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
    ) as client:
        anonymous = text_of((await client.get("/ui/")).text)
        assert "public/app" in anonymous and "team/" not in anonymous
        assert (await client.get("/ui/repo/team/secret")).status_code == 404
        r = await client.get("/ui/login")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        wrong = httpx.BasicAuth("alice", "nope")
        assert (await client.get("/ui/", auth=wrong)).status_code == 401
        assert (await client.get("/ui/login", auth=alice)).status_code == 303

        theirs = (await client.get("/ui/", auth=alice)).text
        assert "team/secret" in theirs and "team/other" not in theirs
        page = (await client.get("/ui/repo/team/secret", auth=alice)).text
        assert "/ui/delete" in page
        assert "/ui/delete" not in (await client.get("/ui/repo/public/app", auth=alice)).text
        form = {"name": "public/app", "reference": "v1"}
        r = await client.post("/ui/delete", data=form, headers=ORIGIN, auth=alice)
        assert r.status_code == 403
        form = {"name": "team/secret", "reference": "v1"}
        r = await client.post("/ui/delete", data=form, headers=ORIGIN, auth=alice)
        assert r.status_code == 303
    assert await store.repository("team/secret").tags.get("v1") is None


class FailingStat:
    """A driver whose `stat` fails as a broken disk would (everything else works)."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stat(self, path: str) -> Any:
        raise OSError("disk on fire")


async def test_a_failing_storage_is_an_error_page_not_a_traceback() -> None:
    driver = create_driver("inmemory", {})
    raw = manifest_bytes(b"{}", [])
    await Store(driver).repository("app").put_manifest(Reference(tag="v1"), raw, None, verify=False)
    store = Store(FailingStat(driver))
    dashboard = Dashboard(DashboardParts(store, LocalResolver(store), MetricsRegistry()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dashboard.wrap(store_app_unused)),
        base_url="http://mirror.test",
    ) as client:
        listed = await client.get("/ui/")  # without the tag count it could not read
        assert listed.status_code == 200 and "/ui/repo/app" in listed.text
        r = await client.get("/ui/repo/app")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "disk on fire" not in r.text and "Traceback" not in r.text


async def store_app_unused(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the dashboard answered every request")


async def test_the_server_records_the_savings_history_from_its_start() -> None:
    config = parse_config("storage: inmemory\nproxy:\n  remoteurl: http://upstream.test\n", {})
    app = create_app(config, MetricsRegistry())
    resolver = app.services.resolver
    assert isinstance(resolver, MirrorResolver)
    async with lifespan(app):
        await eventually_recorded(resolver.state.metadata)


async def eventually_recorded(metadata: MetadataStore) -> None:
    for _ in range(200):  # bounded: 10 s
        if [key async for key, _ in metadata.scan("ui:savings:")]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no savings history was recorded at start-up")


async def test_a_delete_from_the_page_is_notified_like_one_through_the_api(
    tmp_path: Path,
) -> None:
    async with (
        WebhookReceiver() as sink,
        notified_registry(tmp_path / "root", [endpoint("sink", sink.url)], user="alice") as reg,
    ):
        await push_image(reg.client, "team/app", "v1", seed=3)
        r = await reg.client.post(
            "/ui/delete",
            data={"name": "team/app", "reference": "v1"},
            headers={"Origin": "http://registry.test"},
        )
        assert r.status_code == 303
        await eventually(
            lambda: any(e["action"] == "delete" for e in sink.unique_events()),
            what="the delete event",
        )
    (deleted,) = [e for e in sink.unique_events() if e["action"] == "delete"]
    assert deleted["target"]["repository"] == "team/app" and deleted["target"]["tag"] == "v1"
    assert deleted["actor"] == {"name": "alice"}
    assert deleted["request"]["method"] == "POST"
