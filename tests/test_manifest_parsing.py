"""Manifest JSON is read as strictly as the reference registry reads it (issue 8, Low).

The reference (Go's encoding/json into typed structs) refuses a manifest that is not UTF-8
JSON, has a byte order mark, uses NaN or Infinity, or whose `schemaVersion` is not an
integer; it replaces invalid UTF-8 inside strings rather than refusing it.
"""

from __future__ import annotations

import json

import httpx
import pytest

from mirror.errors import ManifestInvalid
from mirror.types import Manifest
from tests.support.oci import manifest_bytes, push_blob, push_manifest

pytestmark = pytest.mark.anyio

GOOD = manifest_bytes(b"{}", [])
TEXT = GOOD.decode()


def with_version(version: str) -> bytes:
    doc = json.loads(GOOD)
    doc["schemaVersion"] = "@"
    return json.dumps(doc).replace('"@"', version).encode()


REFUSED = {
    "utf-16-le": TEXT.encode("utf-16-le"),
    "utf-16 with BOM": TEXT.encode("utf-16"),
    "utf-16-be": TEXT.encode("utf-16-be"),
    "utf-32": TEXT.encode("utf-32"),
    "utf-8 BOM": b"\xef\xbb\xbf" + GOOD,
    "NaN": GOOD[:-1] + b', "x": NaN}',
    "Infinity": GOOD[:-1] + b', "annotations": {"a": "b"}, "n": -Infinity}',
    "schemaVersion 2.0": with_version("2.0"),
    "schemaVersion 2e0": with_version("2e0"),
    "schemaVersion true": with_version("true"),
    "schemaVersion 1.0": with_version("1.0"),
    'schemaVersion "2"': with_version('"2"'),
    "huge size": GOOD.replace(b'"size": 2', b'"size": 99999999999999999999', 1),
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_refused(raw: bytes) -> None:
    with pytest.raises(ManifestInvalid) as info:
        Manifest.parse(raw)
    assert "schema 1" not in info.value.message


def test_schema_version_true_is_not_reported_as_schema_1() -> None:
    with pytest.raises(ManifestInvalid, match="integer 2"):
        Manifest.parse(with_version("true"))


def test_the_good_one_and_invalid_utf8_inside_a_string_are_accepted() -> None:
    assert Manifest.parse(GOOD).media_type == "application/vnd.oci.image.manifest.v1+json"
    odd = GOOD[:-1] + b', "annotations": {"note": "caf\xe9"}}'
    assert Manifest.parse(odd).annotations == {"note": "caf\ufffd"}


async def test_a_push_of_each_gets_manifest_invalid(client: httpx.AsyncClient) -> None:
    await push_blob(client, "m", b"{}")
    assert (await push_manifest(client, "m", "good", GOOD)).status_code == 201
    for name, raw in REFUSED.items():
        r = await push_manifest(client, "m", "latest", raw)
        assert r.status_code == 400, (name, r.text)
        assert r.json()["errors"][0]["code"] == "MANIFEST_INVALID", name
