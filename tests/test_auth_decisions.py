"""The shared access decisions, through the htpasswd controller and the token service.

The token service issues a token for exactly the one access in question; the token
controller, trusting the service's certificate, must then allow it or not, exactly as
the policy decides (and as the htpasswd controller does with the same policy).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import bcrypt
import httpx
import pytest

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.controller import AccessController
from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.token import TokenAccessController
from mirror.auth.tokenservice import create_token_service
from tests.auth_decisions import POLICY, USERS, Decider, decision_params

pytestmark = pytest.mark.anyio
SERVICE = "registry.test"


def password(user: str) -> str:
    return f"{user}-password"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password(user)}".encode()).decode()


async def allowed(controller: AccessController, header: str | None, access: Access) -> bool:
    try:
        await controller.authorized(AuthRequest(header), [access])
    except Challenge:
        return False
    return True


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "htpasswd"
    lines = [
        f"{u}:{bcrypt.hashpw(password(u).encode(), bcrypt.gensalt(4)).decode()}" for u in USERS
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def via_htpasswd(htpasswd: Path, tmp_path: Path) -> Decider:
    controller = HtpasswdAccessController(
        realm="r", path=htpasswd, policy=parse_policy_yaml(POLICY.encode())
    )

    async def decide(user: str | None, access: Access) -> bool:
        return await allowed(controller, basic(user) if user else None, access)

    return decide


def via_token_service(htpasswd: Path, tmp_path: Path) -> Decider:
    app = create_token_service(
        issuer="mirror-test",
        service=SERVICE,
        htpasswd=htpasswd,
        key_directory=tmp_path / "keys",
        policy=parse_policy_yaml(POLICY.encode()),
    )
    controller = TokenAccessController(
        realm="http://auth.test/token",
        service=SERVICE,
        issuer="mirror-test",
        rootcertbundle=str(tmp_path / "keys" / "token-cert.pem"),
    )
    transport = httpx.ASGITransport(app=app)

    async def decide(user: str | None, access: Access) -> bool:
        headers = {"Authorization": basic(user)} if user else {}
        params = {"service": SERVICE, "scope": access.scope}
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            response = await client.get("/token", params=params, headers=headers)
        assert response.status_code == 200, response.text  # never an error, just less access
        return await allowed(controller, f"Bearer {response.json()['token']}", access)

    return decide


DECIDERS: dict[str, Callable[[Path, Path], Decider]] = {
    "htpasswd": via_htpasswd,
    "token-service": via_token_service,
}


@pytest.fixture(params=list(DECIDERS))
async def decide(
    request: pytest.FixtureRequest, htpasswd: Path, tmp_path: Path
) -> AsyncIterator[Decider]:
    yield DECIDERS[request.param](htpasswd, tmp_path)


@pytest.mark.parametrize(("user", "access", "expected"), decision_params())
async def test_decision(decide: Decider, user: str | None, access: Access, expected: bool) -> None:
    assert await decide(user, access) is expected
