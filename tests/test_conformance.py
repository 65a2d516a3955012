"""The OCI distribution-spec v1.1.1 conformance suite against the standalone server.

`../shared/conformance/conformance.test` (beside the checkout; see the README there) runs
its four workflows (pull, push, content discovery, content management) against `mirror
serve` on granian, as users run it; every spec must pass. Without the binary the test
skips, and fails when CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.binaries import unavailable
from tests.support.emulators import S3Emulator, unique_root
from tests.support.mirrorproc import run_mirror
from tests.support.processes import log_tail

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent
SUITE = Path("shared", "conformance", "conformance.test")
# A conformant registry passes 74 specs; 5 are skipped by design with the settings below.
EXPECTED_PASSED = 74
# The emulator is plain HTTP on loopback: no CA bundle concerns its clients.
PLAIN_HTTP = {
    "AWS_CA_BUNDLE": "",
    "SSL_CERT_FILE": "",
    "REQUESTS_CA_BUNDLE": "",
    "CURL_CA_BUNDLE": "",
}
FAILED = frozenset({"failed", "panicked", "interrupted", "timedout", "aborted"})


def suite_binary(scratch: Path) -> Path:
    """The suite beside the checkout; a git worktree looks beside its main checkout too.
    A copy that lost its execute bit is run from a copy in `scratch`."""
    candidates = [REPO.parent / SUITE]
    dot_git = REPO / ".git"
    if dot_git.is_file():  # a worktree: ".git" names <main>/.git/worktrees/<name>
        gitdir = Path(dot_git.read_text().removeprefix("gitdir:").strip())
        candidates.append(gitdir.parent.parent.parent.parent / SUITE)
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
        if path.is_file():
            runnable = scratch / path.name
            shutil.copyfile(path, runnable)
            runnable.chmod(0o755)
            return runnable
    unavailable(f"the conformance suite is not at {candidates[0]} (see its README)")


def failures(junit: Path) -> tuple[list[str], int]:
    """The names of the specs that did not pass, and how many passed."""
    failed: list[str] = []
    passed = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        status = case.get("status", "")
        name = case.get("name", "?")
        if status in FAILED or case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif status == "passed":
            passed += 1
    return failed, passed


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest) -> dict[str, object] | None:
    """The storage section: the default filesystem, or a fresh bucket of moto's S3 (blob
    GETs answered with redirects to it, registry:2's default)."""
    if request.param == "filesystem":
        return None
    s3: S3Emulator = request.getfixturevalue("s3_emulator")
    return {"s3": s3.params(s3.new_bucket(), rootdirectory=unique_root())}


def test_conformance_suite_passes(tmp_path: Path, storage: dict[str, object] | None) -> None:
    binary = suite_binary(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    with run_mirror(tmp_path, server="granian", storage=storage, env=PLAIN_HTTP) as registry:
        env = {
            **os.environ,
            "OCI_ROOT_URL": registry.url,
            "OCI_NAMESPACE": "myorg/myrepo",
            "OCI_CROSSMOUNT_NAMESPACE": "myorg/other",
            "OCI_TEST_PULL": "1",
            "OCI_TEST_PUSH": "1",
            "OCI_TEST_CONTENT_DISCOVERY": "1",
            "OCI_TEST_CONTENT_MANAGEMENT": "1",
            "OCI_HIDE_SKIPPED_WORKFLOWS": "0",
            "OCI_DEBUG": "0",
            "OCI_DELETE_MANIFEST_BEFORE_BLOBS": "0",
            "OCI_REPORT_DIR": str(reports),
        }
        run = subprocess.run(
            [str(binary), "--ginkgo.no-color"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        server_log = log_tail(registry.log_path)
    junit = reports / "junit.xml"
    if not junit.exists():
        pytest.fail(f"no junit.xml (exit {run.returncode}):\n{run.stdout[-3000:]}{run.stderr}")
    failed, passed = failures(junit)
    assert not failed, (
        f"{len(failed)} conformance specs failed:\n  " + "\n  ".join(failed)
        + f"\n--- suite output ---\n{run.stdout[-6000:]}\n--- server log ---\n{server_log}"
    )  # fmt: skip
    assert passed >= EXPECTED_PASSED, f"only {passed} specs passed:\n{run.stdout[-3000:]}"
    assert run.returncode == 0, run.stdout[-3000:]
