"""skopeo round trips on the object stores: the standalone interop tests (an OCI image,
a multi-arch index, Docker schema 2, registry-to-registry copies) against `mirror serve`
on s3 (moto) and azure (Azurite), blob GETs redirected to the store, with the same
digests as Debian's `docker-registry` on its file system."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.test_conformance import PLAIN_HTTP
from tests.test_interop_standalone import (  # the tests, collected here with this `mirror`
    reference,  # noqa: F401 (fixture)
    test_docker_schema2_image_and_manifest_list,  # noqa: F401
    test_multi_arch_index_copied_with_all,  # noqa: F401
    test_oci_image_round_trip_matches_the_reference_registry,  # noqa: F401
    test_registry_to_registry_copies_keep_digests,  # noqa: F401
)


@pytest.fixture(scope="module", params=["s3", "azure"])
def mirror(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorProcess]:
    if request.param == "s3":
        s3: S3Emulator = request.getfixturevalue("s3_emulator")
        params = s3.params(s3.new_bucket(), rootdirectory=unique_root())
    else:
        azure: AzureEmulator = request.getfixturevalue("azure_emulator")
        params = azure.params(rootdirectory=unique_root())
    storage = {str(request.param): params}
    with run_mirror(tmp_path_factory.mktemp("mirror"), storage=storage, env=PLAIN_HTTP) as process:
        yield process
