"""Consistency checks of a registry from the outside ("fsck"), for crash and interop tests.

`check_registry` walks what the HTTP API shows: the catalog, every repository's tags, every
tagged manifest (and the children of an index), and every blob those manifests reference,
downloading each and hashing it. It works against any distribution-API registry, so the
same walk runs on mirror and on the reference registry.

`scan_blob_store` looks under a storage root in the reference layout (the one mirror and
`docker-registry` share): every published blob must hash to the digest it is filed under,
and it lists the hidden temp files crashed writers leave behind.

`assert_layout_has_image` proves an image pulled into an OCI layout is byte-identical to
the one built.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.support.images import BuiltImage, layout_digest, sha256_file

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
_INDEX_KEY = "manifests"
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# A crashed writer's hidden temp file (mirror's ".<name>.tmp-<hex>"), or anything hidden.
_HIDDEN = re.compile(r"(^|/)\.|\.tmp-[0-9a-f]+$")
_MAX_PAGES = 1000
_READ_CHUNK = 1 << 20
BLOBS_DIR = Path("docker/registry/v2/blobs")
REPOSITORIES_DIR = Path("docker/registry/v2/repositories")


@dataclass
class FsckReport:
    """What a walk of the API found; `problems` lists every inconsistency."""

    repositories: list[str] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> digest
    dangling_tags: dict[str, list[str]] = field(default_factory=dict)  # listed, but 404
    manifests: set[tuple[str, str]] = field(default_factory=set)  # (repo, digest) verified
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, verified
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Raise AssertionError listing the problems, if any."""
        if self.problems:
            raise AssertionError("registry is inconsistent:\n" + "\n".join(self.problems))


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def error_codes(response: httpx.Response) -> list[str]:
    """The `code`s of an OCI error envelope ([] when the body is not one)."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("code")) for e in errors if isinstance(e, dict)]


def _pages(client: httpx.Client, url: str, key: str, report: FsckReport) -> Iterator[Any]:
    """Items of a paginated list (catalog or tags), following `Link: <...>; rel="next"`."""
    next_url: str | None = url
    for _ in range(_MAX_PAGES):
        if next_url is None:
            return
        response = client.get(next_url)
        if response.status_code != 200:
            raise _Unlisted(response)
        items = response.json().get(key)
        if not isinstance(items, list):
            report.problems.append(f"GET {next_url}: no {key!r} list in {response.text[:200]}")
            return
        yield from items
        found = _LINK_NEXT.search(response.headers.get("link", ""))
        next_url = urljoin(str(response.url), found.group(1)) if found else None
    report.problems.append(f"{url}: more than {_MAX_PAGES} pages")


class _Unlisted(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def check_registry(base_url: str, *, page_size: int = 100, timeout: float = 60.0) -> FsckReport:
    """Walk the whole registry through its API and verify every byte it serves."""
    report = FsckReport()
    with httpx.Client(base_url=base_url, timeout=timeout, trust_env=False) as client:
        try:
            names = list(_pages(client, f"/v2/_catalog?n={page_size}", "repositories", report))
        except _Unlisted as exc:
            report.problems.append(f"catalog: HTTP {exc.response.status_code}")
            return report
        report.repositories = names
        if names != sorted(set(names)):
            report.problems.append(f"catalog is not sorted and unique: {names}")
        for name in names:
            if _HIDDEN.search(name):
                report.problems.append(f"catalog shows a hidden/temp name {name!r}")
                continue
            _check_repository(client, name, page_size, report)
    return report


def _check_repository(client: httpx.Client, name: str, page_size: int, report: FsckReport) -> None:
    try:
        tags = list(_pages(client, f"/v2/{name}/tags/list?n={page_size}", "tags", report))
    except _Unlisted as exc:
        # A repository holding only untagged manifests has no tags to list.
        if exc.response.status_code != 404:
            report.problems.append(f"{name}: tags/list HTTP {exc.response.status_code}")
        return
    resolved: dict[str, str] = {}
    for tag in tags:
        if _HIDDEN.search(tag):
            report.problems.append(f"{name}: tags/list shows a hidden/temp name {tag!r}")
            continue
        digest = _check_manifest(client, name, tag, report)
        if digest is None:
            report.dangling_tags.setdefault(name, []).append(tag)
        else:
            resolved[tag] = digest
    report.tags[name] = resolved


def _check_manifest(
    client: httpx.Client, name: str, reference: str, report: FsckReport, *, child: bool = False
) -> str | None:
    """Verify one manifest and everything it references; its digest, or None on a 404."""
    where = f"{name}:{reference}" if ":" not in reference else f"{name}@{reference}"
    response = client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
    if response.status_code == 404 and not child:
        return None
    if response.status_code != 200:
        report.problems.append(f"{where}: manifest GET HTTP {response.status_code}")
        return None
    raw = response.content
    digest = sha256_digest(raw)
    served = response.headers.get("docker-content-digest")
    if served is not None and served != digest:
        report.problems.append(f"{where}: Docker-Content-Digest {served} but body is {digest}")
    if ":" in reference and reference != digest:
        report.problems.append(f"{where}: body hashes to {digest}")
    try:
        doc = json.loads(raw)
    except ValueError:
        report.problems.append(f"{where}: manifest is not JSON")
        return digest
    media_type = doc.get("mediaType")
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type and content_type != media_type:
        report.problems.append(f"{where}: Content-Type {content_type} for a {media_type}")
    if (name, digest) in report.manifests:
        return digest
    report.manifests.add((name, digest))
    for entry in doc.get(_INDEX_KEY) or []:
        _check_manifest(client, name, entry["digest"], report, child=True)
    for descriptor in [doc["config"], *doc["layers"]] if "config" in doc else []:
        _check_blob(client, name, descriptor["digest"], descriptor["size"], report)
    return digest


def _check_blob(
    client: httpx.Client, name: str, digest: str, size: int, report: FsckReport
) -> None:
    """GET a blob and hash it; a problem unless it is complete and correct."""
    status, actual, length = fetch_blob(client, name, digest)
    if status != 200:
        report.problems.append(f"{name}@{digest}: blob GET HTTP {status}")
    elif actual != digest or length != size:
        report.problems.append(
            f"{name}@{digest}: served {length} bytes hashing to {actual} (expected {size})"
        )
    else:
        report.blobs[digest] = length


def fetch_blob(client: httpx.Client, name: str, digest: str) -> tuple[int, str | None, int]:
    """(status, sha256 of the body or None, body length) of GET /v2/<name>/blobs/<digest>.

    httpx raises RemoteProtocolError when a body ends before its Content-Length. A
    redirect (an object store's signed URL, `storage.redirect`) is followed.
    """
    hasher = hashlib.sha256()
    length = 0
    with client.stream("GET", f"/v2/{name}/blobs/{digest}", follow_redirects=True) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, None, 0
        for chunk in response.iter_bytes(_READ_CHUNK):
            hasher.update(chunk)
            length += len(chunk)
    return 200, f"sha256:{hasher.hexdigest()}", length


def probe_blobs(
    base_url: str, name: str, digests: Iterable[str], *, timeout: float = 60.0
) -> tuple[set[str], list[str]]:
    """GET each blob in repository `name`: (digests served, problems).

    A blob may be absent (404); one that is served must be whole and hash to its digest.
    """
    served: set[str] = set()
    problems: list[str] = []
    with httpx.Client(base_url=base_url, timeout=timeout, trust_env=False) as client:
        for digest in digests:
            status, actual, length = fetch_blob(client, name, digest)
            if status == 404:
                continue
            if status != 200 or actual != digest:
                problems.append(f"{name}@{digest}: HTTP {status}, {length} bytes, {actual}")
                continue
            served.add(digest)
    return served, problems


@dataclass
class BlobStoreScan:
    """Published blobs under a storage root, and what is wrong with them."""

    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size
    unpublished: list[str] = field(default_factory=list)  # blob dirs holding no `data`
    temp_files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan_blob_store(root: Path) -> BlobStoreScan:
    """Hash every `blobs/<alg>/<xx>/<hex>/data` under `root`; find leftover temp files."""
    scan = BlobStoreScan()
    for path in sorted(root.rglob("*")):
        if path.is_file() and _HIDDEN.search(path.name):
            scan.temp_files.append(path)
    blobs = root / BLOBS_DIR
    for blob_dir in sorted(blobs.glob("*/*/*")):
        algorithm, hex_digest = blob_dir.parent.parent.name, blob_dir.name
        digest = f"{algorithm}:{hex_digest}"
        data = blob_dir / "data"
        if not data.is_file():
            scan.unpublished.append(digest)
            continue
        if algorithm != "sha256":
            scan.problems.append(f"{data}: unexpected algorithm")
            continue
        actual = sha256_file(data)
        if actual != digest:
            scan.problems.append(f"{data}: published blob hashes to {actual}")
        scan.blobs[digest] = data.stat().st_size
    return scan


def linked_blobs(root: Path) -> dict[str, list[str]]:
    """Repository name -> digests of its layer links (`_layers/<alg>/<hex>/link`)."""
    found: dict[str, list[str]] = {}
    base = root / REPOSITORIES_DIR
    for link in sorted(base.rglob("_layers/*/*/link")):
        layers = link.parent.parent.parent
        name = layers.parent.relative_to(base).as_posix()
        found.setdefault(name, []).append(f"{link.parent.parent.name}:{link.parent.name}")
    return found


def assert_layout_has_image(layout: Path, tag: str, image: BuiltImage) -> None:
    """`layout:tag` is `image`: same digest, and every manifest and blob byte-identical."""
    assert layout_digest(layout, tag) == image.digest
    blobs = layout / "blobs" / "sha256"
    manifests = {image.digest: image.manifest}
    manifests.update({child.digest: child.manifest for child in image.children})
    for digest, raw in manifests.items():
        assert (blobs / digest.split(":", 1)[1]).read_bytes() == raw, digest
    for blob in image.blobs:
        pulled = blobs / blob.hex
        assert pulled.stat().st_size == blob.size, blob.digest
        assert sha256_file(pulled) == blob.digest
