from __future__ import annotations

import json

import httpx
import pytest

from tests.support.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    index_bytes,
    manifest_bytes,
    push_blob,
    push_image,
    push_manifest,
)

pytestmark = pytest.mark.anyio


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


async def test_put_get_head_by_tag_and_digest(client: httpx.AsyncClient) -> None:
    raw, digest = await push_image(client, "lib/app", "v1")
    for ref in ("v1", digest):
        r = await client.get(f"/v2/lib/app/manifests/{ref}")
        assert r.status_code == 200
        assert r.content == raw  # byte for byte
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == digest
        assert r.headers["etag"] == f'"{digest}"'
        h = await client.head(f"/v2/lib/app/manifests/{ref}")
        assert h.status_code == 200 and h.content == b""
        assert h.headers["content-length"] == str(len(raw))
        assert h.headers["docker-content-digest"] == digest


async def test_put_response_headers(client: httpx.AsyncClient) -> None:
    config, layer = b"{}", b"layer"
    await push_blob(client, "x", config)
    await push_blob(client, "x", layer)
    raw = manifest_bytes(config, [layer])
    r = await push_manifest(client, "x", "t", raw)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest_of(raw)
    assert r.headers["location"].endswith(f"/v2/x/manifests/{digest_of(raw)}")


async def test_docker_schema2_and_index(client: httpx.AsyncClient) -> None:
    config, layer = b'{"os":"linux"}', b"docker layer"
    await push_blob(client, "multi", config)
    await push_blob(client, "multi", layer)
    child1 = manifest_bytes(config, [layer], media_type=DOCKER_MANIFEST)
    child2 = manifest_bytes(config, [layer])
    assert (
        await push_manifest(client, "multi", digest_of(child1), child1, DOCKER_MANIFEST)
    ).status_code == 201
    assert (await push_manifest(client, "multi", digest_of(child2), child2)).status_code == 201
    index = index_bytes([(child1, DOCKER_MANIFEST), (child2, OCI_MANIFEST)])
    r = await push_manifest(client, "multi", "latest", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    r = await client.get("/v2/multi/manifests/latest")
    assert r.content == index and r.headers["content-type"] == OCI_INDEX
    r = await client.get(f"/v2/multi/manifests/{digest_of(child1)}")
    assert r.headers["content-type"] == DOCKER_MANIFEST


async def test_index_with_missing_child(client: httpx.AsyncClient) -> None:
    child = manifest_bytes(b"{}", [])
    r = await push_manifest(client, "m", "latest", index_bytes([(child, OCI_MANIFEST)]), OCI_INDEX)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_missing_blobs(client: httpx.AsyncClient) -> None:
    raw = manifest_bytes(b"{}", [b"never uploaded"])
    r = await push_manifest(client, "m", "latest", raw)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"
    await push_blob(client, "m", b"{}")
    r = await push_manifest(client, "m", "latest", raw)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert r.json()["errors"][0]["detail"]["digest"] == digest_of(b"never uploaded")


async def test_blob_in_another_repository_does_not_count(client: httpx.AsyncClient) -> None:
    await push_blob(client, "other", b"{}")
    r = await push_manifest(client, "m", "latest", manifest_bytes(b"{}", []))
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"


async def test_wrong_blob_size_is_invalid(client: httpx.AsyncClient) -> None:
    await push_blob(client, "m", b"{}")
    doc = json.loads(manifest_bytes(b"{}", []))
    doc["config"]["size"] = 99
    r = await push_manifest(client, "m", "latest", json.dumps(doc).encode())
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"schemaVersion": 3}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
        b'{"schemaVersion": 2, "mediaType": "text/plain", "layers": []}',
        b'{"schemaVersion": 2, "config": {"digest": "sha256:zz", "size": 1, "mediaType": "a"},'
        b' "layers": []}',
        b'{"schemaVersion": 2, "config": {"digest": "sha256:'
        + b"a" * 64
        + b'", "size": -1, "mediaType": "a"}, "layers": []}',
    ],
)
async def test_malformed_manifests(client: httpx.AsyncClient, body: bytes) -> None:
    r = await push_manifest(client, "m", "latest", body)
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID", r.text


async def test_schema1_is_rejected_clearly(client: httpx.AsyncClient) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "m", "tag": "latest", "fsLayers": []}).encode()
    r = await push_manifest(
        client, "m", "latest", body, "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"
    assert "schema 1" in r.json()["errors"][0]["message"]


async def test_content_type_must_match_media_type(client: httpx.AsyncClient) -> None:
    await push_blob(client, "m", b"{}")
    raw = manifest_bytes(b"{}", [])
    r = await push_manifest(client, "m", "latest", raw, DOCKER_MANIFEST)
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"


async def test_manifest_too_large(client: httpx.AsyncClient) -> None:
    body = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = await push_manifest(client, "m", "latest", body)
    assert r.status_code == 413 and code(r) == "MANIFEST_INVALID"


async def test_put_by_digest_must_match(client: httpx.AsyncClient) -> None:
    await push_blob(client, "m", b"{}")
    raw = manifest_bytes(b"{}", [])
    r = await push_manifest(client, "m", digest_of(b"something else"), raw)
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    r = await push_manifest(client, "m", digest_of(raw), raw)
    assert r.status_code == 201


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "tag%2Fslash", "t@g"])
async def test_invalid_tags(client: httpx.AsyncClient, tag: str) -> None:
    r = await client.get(f"/v2/m/manifests/{tag}")
    assert r.status_code in (400, 404)
    if r.status_code == 400:
        assert code(r) in ("TAG_INVALID", "DIGEST_INVALID")


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
@pytest.mark.parametrize("tag", [".INVALID_MANIFEST_NAME", "-dash", "a" * 129, "t@g"])
async def test_looking_up_an_invalid_tag_is_manifest_unknown(
    client: httpx.AsyncClient, method: str, tag: str
) -> None:
    """No manifest can have an invalid tag: 404, as the OCI conformance suite expects."""
    await push_image(client, "m", "v1")
    r = await client.request(method, f"/v2/m/manifests/{tag}")
    assert r.status_code == 404
    if method != "HEAD":
        assert code(r) == "MANIFEST_UNKNOWN"


@pytest.mark.parametrize("tag", [".INVALID_MANIFEST_NAME", "a" * 129, "t@g"])
async def test_pushing_to_an_invalid_tag_is_tag_invalid(
    client: httpx.AsyncClient, tag: str
) -> None:
    await push_blob(client, "m", b"{}")
    r = await push_manifest(client, "m", tag, manifest_bytes(b"{}", []))
    assert r.status_code == 400 and code(r) == "TAG_INVALID"


async def test_unknown_manifest(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing/manifests/latest")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    r = await client.head(f"/v2/nothing/manifests/{digest_of(b'x')}")
    assert r.status_code == 404 and r.content == b""


async def test_manifest_only_in_its_repository(client: httpx.AsyncClient) -> None:
    _, digest = await push_image(client, "a", "v1")
    r = await client.get(f"/v2/b/manifests/{digest}")
    assert r.status_code == 404


async def test_retag_and_delete_tag(client: httpx.AsyncClient) -> None:
    _, d1 = await push_image(client, "t", "latest", seed=1)
    _, d2 = await push_image(client, "t", "latest", seed=2)
    r = await client.get("/v2/t/manifests/latest")
    assert r.headers["docker-content-digest"] == d2
    assert (await client.get(f"/v2/t/manifests/{d1}")).status_code == 200
    assert (await client.delete("/v2/t/manifests/latest")).status_code == 202
    assert (await client.get("/v2/t/manifests/latest")).status_code == 404
    assert (await client.get(f"/v2/t/manifests/{d2}")).status_code == 200


async def test_delete_by_digest_removes_its_tags(client: httpx.AsyncClient) -> None:
    _, digest = await push_image(client, "t", "one")
    raw = (await client.get("/v2/t/manifests/one")).content
    await push_manifest(client, "t", "two", raw)
    await push_image(client, "t", "three", seed=9)
    assert (await client.delete(f"/v2/t/manifests/{digest}")).status_code == 202
    assert (await client.get(f"/v2/t/manifests/{digest}")).status_code == 404
    tags = (await client.get("/v2/t/tags/list")).json()["tags"]
    assert tags == ["three"]
    r = await client.delete(f"/v2/t/manifests/{digest}")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"


async def test_tags_list_pagination(client: httpx.AsyncClient) -> None:
    raw, _ = await push_image(client, "p", "seed")
    names = [f"v{i:02d}" for i in range(12)]
    for name in names:
        assert (await push_manifest(client, "p", name, raw)).status_code == 201
    everything = sorted([*names, "seed"])
    r = await client.get("/v2/p/tags/list")
    assert r.json() == {"name": "p", "tags": everything}
    assert "link" not in r.headers
    r = await client.get("/v2/p/tags/list?n=5")
    assert r.json()["tags"] == everything[:5]
    assert r.headers["link"] == f'</v2/p/tags/list?n=5&last={everything[4]}>; rel="next"'
    r = await client.get(f"/v2/p/tags/list?n=5&last={everything[4]}")
    assert r.json()["tags"] == everything[5:10]
    r = await client.get(f"/v2/p/tags/list?n=5&last={everything[9]}")
    assert r.json()["tags"] == everything[10:]
    assert "link" not in r.headers
    r = await client.get("/v2/p/tags/list?n=0")
    assert r.json()["tags"] == []
    r = await client.get("/v2/p/tags/list?n=abc")
    assert r.status_code == 400 and code(r) == "PAGINATION_NUMBER_INVALID"
    r = await client.get("/v2/unknown/tags/list")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"


async def test_catalog_pagination(client: httpx.AsyncClient) -> None:
    for name in ["b", "a/x", "c/d/e", "a"]:
        await push_image(client, name, "v1")
    r = await client.get("/v2/_catalog")
    assert r.json() == {"repositories": ["a", "a/x", "b", "c/d/e"]}
    r = await client.get("/v2/_catalog?n=2")
    assert r.json()["repositories"] == ["a", "a/x"]
    assert r.headers["link"] == '</v2/_catalog?n=2&last=a%2Fx>; rel="next"'
    r = await client.get("/v2/_catalog?n=2&last=a/x")
    assert r.json()["repositories"] == ["b", "c/d/e"]


async def test_referrers(client: httpx.AsyncClient) -> None:
    raw, digest = await push_image(client, "s", "v1")
    subject = descriptor(raw, OCI_MANIFEST)
    r = await client.get(f"/v2/s/referrers/{digest}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    sig_raw, sig = await push_image(
        client, "s", "sig", seed=3, subject=subject, artifact_type="application/vnd.example.sig"
    )
    _, sbom = await push_image(client, "s", "sbom", seed=4, subject=subject)
    r = await client.get(f"/v2/s/referrers/{digest}")
    assert r.headers["content-type"] == OCI_INDEX
    found = {m["digest"]: m for m in r.json()["manifests"]}
    assert set(found) == {sig, sbom}
    assert found[sig]["artifactType"] == "application/vnd.example.sig"
    assert found[sbom]["artifactType"] == "application/vnd.oci.image.config.v1+json"
    assert found[sig]["size"] == len(sig_raw)
    r = await client.get(f"/v2/s/referrers/{digest}?artifactType=application/vnd.example.sig")
    assert [m["digest"] for m in r.json()["manifests"]] == [sig]
    assert r.headers["oci-filters-applied"] == "artifactType"
    await client.delete(f"/v2/s/manifests/{sig}")
    r = await client.get(f"/v2/s/referrers/{digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom]


async def test_put_with_subject_returns_oci_subject(client: httpx.AsyncClient) -> None:
    raw, digest = await push_image(client, "s", "v1")
    await push_blob(client, "s", b"{}")
    ref = manifest_bytes(b"{}", [], subject=descriptor(raw, OCI_MANIFEST), artifact_type="x/y")
    r = await push_manifest(client, "s", digest_of(ref), ref)
    assert r.status_code == 201
    assert r.headers["oci-subject"] == digest


async def test_deeply_nested_json_is_invalid_not_500(client: httpx.AsyncClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    r = await push_manifest(client, "m", "latest", body)
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"
