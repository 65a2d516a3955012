"""The dashboard in a real browser (Debian's headless `chromium`), after a real push with
skopeo into a local namespace and a real pull-through from CNCF Distribution
(`docker-registry`): the repositories, tags and cache figures appear in the DOM the
browser built, and a screenshot of each page is kept in the test's directory (and in
`$MIRROR_UI_SCREENSHOTS` when set, which is how docs/ got its copy)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import skopeo
from tests.support.browser import PHONE, Browser
from tests.support.distribution import RegistryProcess, run_reference_registry
from tests.support.images import build_image
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import MiB, proxy_settings

pytestmark = pytest.mark.interop


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return Browser(tmp_path / "chromium-profile")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "hub") as registry:
        yield registry


@pytest.fixture
def mirror(tmp_path: Path, hub: RegistryProcess) -> Iterator[MirrorProcess]:
    with run_mirror(tmp_path, proxy=proxy_settings(hub.url, local=["team"])) as process:
        yield process


def visible_text(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def keep(shot: Path) -> None:
    target = os.environ.get("MIRROR_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


def test_the_dashboard_shows_pushed_and_cached_images(
    tmp_path: Path, browser: Browser, hub: RegistryProcess, mirror: MirrorProcess
) -> None:
    pushed = build_image(tmp_path / "web", layers=[2 * MiB, 4096], seed="web", tag="1.0")
    skopeo.copy(pushed.source_ref, f"docker://{mirror.host}/team/web:1.0")
    upstream = build_image(tmp_path / "app", layers=[3 * MiB], seed="app", tag="3.19")
    skopeo.copy(upstream.source_ref, hub.ref("library/alpine", "3.19"))
    for attempt in ("first", "second"):  # the second pull is served from the cache
        skopeo.copy(f"docker://{mirror.host}/alpine:3.19", f"dir:{tmp_path / attempt}")

    shots = tmp_path / "screenshots"
    pages = {
        "repositories": f"{mirror.url}/ui/",
        "repository": f"{mirror.url}/ui/repo/team/web",
        "image": f"{mirror.url}/ui/image/team/web@{pushed.digest}",
        "cache": f"{mirror.url}/ui/cache",
    }
    text = {name: visible_text(browser.dom(url)) for name, url in pages.items()}

    assert "team/web local" in text["repositories"]
    assert "docker.io/library/alpine cache of docker.io" in text["repositories"]
    assert f"1.0 {pushed.digest[:19]}" in text["repository"]
    assert "linux/amd64" in text["repository"]
    assert f"docker pull {mirror.host}/team/web@{pushed.digest}" in text["image"]
    assert "Layers" in text["image"] and "2.0 MiB" in text["image"]
    cache = text["cache"]
    assert re.search(r"3\.0 MiB served from the cache", cache), cache
    assert re.search(r"3\.0 MiB fetched from upstreams", cache), cache
    assert "docker.io" in cache and "reachable breaker closed" in cache
    # The vendored htmx loaded from the mirror itself and ran under the page's CSP.
    assert 'data-htmx="2.0.11"' in browser.dom(pages["repositories"])

    for name, url in pages.items():
        keep(browser.screenshot(url, shots / f"ui-{name}.png"))
    keep(browser.screenshot(pages["repository"], shots / "ui-repository-phone.png", PHONE))
    assert sorted(p.name for p in shots.iterdir()) == [
        "ui-cache.png",
        "ui-image.png",
        "ui-repositories.png",
        "ui-repository-phone.png",
        "ui-repository.png",
    ]


def test_search_in_the_browser_narrows_the_list(
    tmp_path: Path, browser: Browser, mirror: MirrorProcess
) -> None:
    image = build_image(tmp_path / "img", layers=[1024], seed="s", tag="v1")
    for name in ("team/api", "team/worker", "team/web"):
        skopeo.copy(image.source_ref, f"docker://{mirror.host}/{name}:v1")
    found = visible_text(browser.dom(f"{mirror.url}/ui/?q=work"))
    assert "team/worker" in found and "team/api" not in found
    assert "1 repository matching" in found


def test_every_worker_shows_the_whole_servers_figures(tmp_path: Path, hub: RegistryProcess) -> None:
    """With two granian workers, whichever answers the cache page adds up both workers'
    counters (the multiprocess metrics), as a scrape does."""
    upstream = build_image(tmp_path / "app", layers=[MiB], seed="workers", tag="1")
    skopeo.copy(upstream.source_ref, hub.ref("library/busybox", "1"))
    # Without prefetch, so that the first pull's layer is what the upstream sent it.
    proxy = proxy_settings(hub.url, prefetch=False)
    with run_mirror(tmp_path, proxy=proxy, server="granian", workers=2) as mirror:
        for attempt in range(4):  # spread over the workers; the first one fetches
            skopeo.copy(f"docker://{mirror.host}/busybox:1", f"dir:{tmp_path / str(attempt)}")
        seen = set()
        for _ in range(12):  # a new connection each time, so both workers answer
            with httpx.Client(base_url=mirror.url, timeout=30.0) as client:
                page = visible_text(client.get("/ui/cache").text)
                saved = re.search(r"([\d.]+ [KMG]iB) served from the cache", page)
                fetched = re.search(r"([\d.]+ [KMG]iB) fetched from upstreams", page)
                assert saved and fetched, page
                seen.add((saved.group(1), fetched.group(1)))
    assert seen == {("3.0 MiB", "1.0 MiB")}, seen
