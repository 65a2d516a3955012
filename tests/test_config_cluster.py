"""The `cluster` section: a replica's advertised URL and the secret every replica shares."""

from __future__ import annotations

import pytest

from tests.support.configs import MINIMAL, error_of, parse

SECRET = "0123456789abcdef0123"


def test_cluster_is_off_by_default_and_takes_an_url_and_a_secret() -> None:
    assert parse(MINIMAL).cluster.advertise == ""
    config = parse(MINIMAL + f"cluster:\n  advertise: http://10.0.0.5:5000/\n  secret: {SECRET}\n")
    assert config.cluster.advertise == "http://10.0.0.5:5000"
    assert config.cluster.secret == SECRET
    assert config.redacted()["cluster"]["secret"] == "<redacted>"
    # The secret may come from the environment rather than the shared file.
    env = {"REGISTRY_CLUSTER_ADVERTISE": "http://b:5000", "REGISTRY_CLUSTER_SECRET": SECRET}
    from_env = parse(MINIMAL, env).cluster
    assert (from_env.advertise, from_env.secret) == ("http://b:5000", SECRET)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cluster:\n  advertise: http://10.0.0.5:5000\n",
            "cluster.secret: advertise needs a secret of at least 16 characters",
        ),
        (
            "cluster:\n  advertise: http://10.0.0.5:5000\n  secret: short\n",
            "cluster.secret: advertise needs a secret of at least 16 characters",
        ),
        (
            f"cluster:\n  advertise: 10.0.0.5:5000\n  secret: {SECRET}\n",
            "cluster.advertise: expected an absolute http(s) URL",
        ),
    ],
)
def test_bad_cluster_settings_are_refused(text: str, message: str) -> None:
    assert message in error_of(MINIMAL + text)


def test_cluster_is_for_object_stores() -> None:
    cluster = f"cluster:\n  advertise: http://a:5000\n  secret: {SECRET}\n"
    text = "storage:\n  filesystem: {rootdirectory: /srv}\n" + cluster
    assert "cluster.advertise: only object stores spool downloads" in error_of(text)


def test_workers_of_a_replica_share_one_spool_directory() -> None:
    cluster = f"cluster:\n  advertise: http://10.0.0.5:5000\n  secret: {SECRET}\n"
    workers = "http:\n  workers: 2\n"
    assert "cluster.advertise: set cache.directory" in error_of(MINIMAL + workers + cluster)
    shared = "cache:\n  directory: /var/lib/mirror\n"
    assert parse(MINIMAL + workers + cluster + shared).cluster.advertise
