"""`mirror copy --referrers` between the mirror (referrers API) and Debian's
docker-registry (Distribution 2.8: no referrers API, so the fallback tag), both running
as processes; what lands is read back with skopeo, byte for byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.client.referrers import fallback_tag
from mirror.client.registry import Registry
from tests.support import skopeo
from tests.support.distribution import RegistryProcess, run_reference_registry
from tests.support.mirrorcli import mirror_cli
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.oci import OCI_INDEX
from tests.support.referrers import SBOM, SIGNATURE, Signed, push_signed

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Setup:
    registry: RegistryProcess
    mirror: MirrorProcess
    tmp: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("referrers-interop")
    with (
        run_reference_registry(tmp / "registry") as registry,
        run_mirror(tmp, name="mirror") as mirror,
    ):
        yield Setup(registry, mirror, tmp)


@pytest.fixture
async def on_mirror(setup: Setup) -> AsyncIterator[Registry]:
    async with Registry(setup.mirror.host, insecure=True, use_docker_config=False) as registry:
        yield registry


def copy(*args: str) -> dict[str, object]:
    done = mirror_cli("copy", "--insecure", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def raw(ref: str) -> bytes:
    return skopeo.inspect(ref, raw=True)


def listed(index: bytes) -> dict[str, dict[str, object]]:
    doc = json.loads(index)
    assert doc["mediaType"] == OCI_INDEX
    return {entry["digest"]: entry for entry in doc["manifests"]}


@pytest.mark.anyio
async def test_referrers_to_and_from_a_registry_without_the_api(
    setup: Setup, on_mirror: Registry
) -> None:
    signed: Signed = await push_signed(on_mirror, "signed/app")
    originals = {
        d: raw(f"docker://{setup.mirror.host}/signed/app@{d}")
        for d in (signed.signature, signed.sbom, signed.sbom_signature)
    }
    reg = setup.registry
    result = copy("-r", setup.mirror.ref("signed/app", "v1"), reg.ref("signed/app", "v1"))
    assert result["digest"] == str(signed.image) and result["referrers"] == 3
    # docker-registry has them byte for byte, listed in the fallback indexes.
    for digest, body in originals.items():
        assert raw(f"docker://{reg.host}/signed/app@{digest}") == body
    image_index = listed(raw(reg.ref("signed/app", fallback_tag(signed.image))))
    assert set(image_index) == {str(signed.signature), str(signed.sbom)}
    assert image_index[str(signed.sbom)]["artifactType"] == SBOM
    sbom_index = listed(raw(reg.ref("signed/app", fallback_tag(signed.sbom))))
    assert set(sbom_index) == {str(signed.sbom_signature)}
    assert sbom_index[str(signed.sbom_signature)]["artifactType"] == SIGNATURE

    # Back from docker-registry (read through the fallback tags) into another mirror
    # repository, whose referrers API then lists them.
    back = copy("-r", reg.ref("signed/app", "v1"), setup.mirror.ref("back/app", "v1"))
    assert back["referrers"] == 3
    found = await on_mirror.referrers("back/app", signed.image)
    assert {d.digest for d in found} == {signed.signature, signed.sbom}
    assert {d.digest for d in await on_mirror.referrers("back/app", signed.sbom)} == {
        signed.sbom_signature
    }
    for digest, body in originals.items():
        assert raw(f"docker://{setup.mirror.host}/back/app@{digest}") == body


@pytest.mark.anyio
async def test_without_the_flag_no_referrer_goes_along(setup: Setup, on_mirror: Registry) -> None:
    signed = await push_signed(on_mirror, "plain/src")
    layout = setup.tmp / "plain"
    to_layout = copy("-r", setup.mirror.ref("plain/src", "v1"), f"oci:{layout}:v1")
    assert to_layout["referrers"] == 3
    reg = setup.registry
    plain = copy(f"oci:{layout}:v1", reg.ref("plain/app", "v1"))
    assert plain["digest"] == str(signed.image) and plain["referrers"] == 0
    with pytest.raises(skopeo.SkopeoError):
        raw(reg.ref("plain/app", fallback_tag(signed.image)))
    # skopeo still reads the layout whose index.json lists the referrers beside the tag.
    assert raw(f"oci:{layout}:v1") == raw(reg.ref("plain/app", "v1"))
