"""Access controllers by name, from registry:2's option names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mirror.auth.access import Access, AuthRequest, Grant
from mirror.auth.controller import authorize
from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.registry import controller_names, create_access_controller, register
from mirror.auth.silly import SillyAccessController
from mirror.auth.token import TokenAccessController
from tests.support.tokens import ISSUER, SERVICE, certificate, rsa_key, write_bundle


def test_builtin_controllers_by_name(tmp_path: Path) -> None:
    (tmp_path / "htpasswd").write_text("")
    bundle = write_bundle(tmp_path / "bundle.pem", certificate("x", rsa_key()))
    built = [
        create_access_controller("htpasswd", realm="r", path=str(tmp_path / "htpasswd")),
        create_access_controller(
            "token", realm="r", service=SERVICE, issuer=ISSUER, rootcertbundle=str(bundle)
        ),
        create_access_controller("silly", realm="r", service="s"),
    ]
    kinds = [HtpasswdAccessController, TokenAccessController, SillyAccessController]
    assert [type(c) for c in built] == kinds
    assert controller_names()[:3] == ["htpasswd", "silly", "token"]


def test_unknown_names_and_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no access controller named 'ldap'"):
        create_access_controller("ldap")
    with pytest.raises(TypeError):
        create_access_controller("silly", realm="r", service="s", colour="blue")
    with pytest.raises(FileNotFoundError):
        create_access_controller("htpasswd", realm="r", path=str(tmp_path / "none"))


@pytest.mark.anyio
async def test_register_a_controller() -> None:
    class Everyone:
        async def authorized(self, request: AuthRequest, accesses: object) -> Grant:
            return Grant("everyone")

    register("test-everyone", lambda **options: Everyone())
    controller = create_access_controller("test-everyone")
    assert (await controller.authorized(AuthRequest(), [])).user == "everyone"
    with pytest.raises(ValueError, match="already registered"):
        register("htpasswd", lambda **options: Everyone())


@pytest.mark.anyio
async def test_authorize_checks_what_the_request_needs() -> None:
    seen: list[tuple[AuthRequest, list[Access]]] = []

    class Recorder:
        async def authorized(self, request: AuthRequest, accesses: Sequence[Access]) -> Grant:
            seen.append((request, list(accesses)))
            return Grant("x", accesses=tuple(accesses))

    headers = [(b"authorization", b"Bearer t"), (b"host", b"reg:5000")]
    grant = await authorize(Recorder(), headers, "POST", "repository", name="b", mount_from="a")
    assert seen == [
        (
            AuthRequest("Bearer t", "reg:5000"),
            [
                Access("repository", "b", "pull"),
                Access("repository", "b", "push"),
                Access("repository", "a", "pull"),
            ],
        )
    ]
    assert grant.accesses == tuple(seen[0][1])
