"""Workload 14: authenticated manifest and blob GETs, htpasswd and token auth.

Five standalone servers on the same machine: mirror without auth; mirror and
docker-registry with the same `auth.htpasswd` block (one bcrypt user, cost 5, what
`htpasswd -B` writes); mirror and docker-registry with the same `auth.token` block,
trusting the RS256 certificate of a token service on loopback (skopeo logs in there to
push); wrk sends one token that service minted for the run (pull of the repository).
The same small image is pushed to each. wrk then GETs its manifest by tag and its 64 KiB
layer, with the header, over keep-alive connections.

Rows: per scheme and request, mirror against the reference with the same block (bar
>= 5x), and authenticated mirror against unauthenticated mirror (the "reference"
column; bar: within 10%, a ratio >= 0.9), by the request rate and by the server's CPU
per request (`bench.cpu`: steadier on a shared machine; bar <= 1/0.9).
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from typing import Any

import bcrypt
from cryptography.hazmat.primitives import serialization

from bench.cpu import per_request
from bench.env import Env, Server
from bench.loadgen import wrk
from bench.manifests import ACCEPT
from bench.results import Row, Samples, at_least, at_most
from mirror.auth.scope import ResourceScope
from mirror.auth.tokenservice import create_token_service
from tests.support import skopeo
from tests.support.distribution import run_reference_registry
from tests.support.images import BuiltImage
from tests.support.mirrorproc import run_mirror
from tests.support.threadserver import serving_in_thread
from tests.support.tokens import certificate, rsa_key

USER, PASSWORD = "bench", "bench-password"
SERVICE, ISSUER = "bench.registry", "bench-issuer"
REPOSITORY = "bench/auth"
TOKEN_LIFETIME = 6 * 3600
BCRYPT_COST = 5  # `htpasswd -B`'s default, what registry:2's docs tell users to run
MIN_SECONDS = 3  # the reference pays bcrypt per request: 1 s may complete none
VS_REFERENCE = 5.0
VS_UNAUTHENTICATED = 0.9


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str  # "htpasswd" | "token"
    block: dict[str, Any]  # the `auth` block both servers run with
    header: str  # the Authorization header clients send


def _htpasswd(env: Env) -> Scheme:
    path = env.workdir / "auth" / "htpasswd"
    path.parent.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    path.write_text(f"{USER}:{hashed}\n")
    block = {"htpasswd": {"realm": "bench", "path": str(path)}}
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return Scheme("htpasswd", block, f"Basic {basic}")


def _token(env: Env) -> Scheme:
    """A token service on loopback (the realm skopeo logs in at) signing with an RS256 key
    and certificate; wrk sends one token it minted for the run."""
    directory = env.workdir / "auth"
    key = rsa_key()
    cert = certificate(ISSUER, key)
    key_path = directory / "token-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    bundle = directory / "token-cert.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    service = create_token_service(
        issuer=ISSUER,
        service=SERVICE,
        htpasswd=directory / "htpasswd",
        key_path=key_path,
        certificate_path=bundle,
        lifetime=TOKEN_LIFETIME,
    )
    url = env.enter(serving_in_thread(service))
    token = service.issuer.issue(USER, [ResourceScope("repository", REPOSITORY, ("pull",))])
    block = {
        "token": {
            "realm": f"{url}/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
    }
    return Scheme("token", block, f"Bearer {token.token}")


def _servers(env: Env, scheme: Scheme) -> tuple[Server, Server]:
    name = f"auth-{scheme.name}"
    mirror = env.enter(
        run_mirror(env.workdir, name=f"mirror-{name}", server=env.server,
                   extra={"auth": scheme.block})
    )  # fmt: skip
    reference = env.enter(run_reference_registry(env.workdir / f"reference-{name}",
                                                 auth=scheme.block))  # fmt: skip
    return (
        Server("mirror", mirror.url, mirror.config_path, mirror.log_path),
        Server("reference", reference.url, reference.config_path, reference.log_path),
    )


def _push(env: Env, image: BuiltImage, server: Server, logged_in: bool) -> None:
    extra = [f"--dest-creds={USER}:{PASSWORD}"] if logged_in else []
    skopeo.copy(image.source_ref, server.ref(REPOSITORY), extra_args=extra,
                timeout=env.scale.timeout)  # fmt: skip


def auth_rates(env: Env) -> list[Row]:
    image = env.image("auth", [64 * 1024])
    layer = image.layers[0].digest
    plain = env.standalone("mirror")
    _push(env, image, plain, logged_in=False)
    scale = env.scale
    seconds = max(scale.rate_seconds, MIN_SECONDS)
    rows: list[Row] = []
    for scheme in (_htpasswd(env), _token(env)):
        mirror, reference = _servers(env, scheme)
        for server in (mirror, reference):
            _push(env, image, server, logged_in=True)
        targets = {
            "manifest GET by tag": (f"/v2/{REPOSITORY}/manifests/latest", {"Accept": ACCEPT}),
            "blob GET (64 KiB)": (f"/v2/{REPOSITORY}/blobs/{layer}", {}),
        }
        for what, (path, headers) in targets.items():
            vs_reference, vs_plain, cpu_plain = Samples(), Samples(), Samples()
            authorized = {**headers, "Authorization": scheme.header}
            servers = [(mirror, authorized), (reference, authorized), (plain, headers)]
            for round_number in range(scale.rounds):
                order = servers if round_number % 2 == 0 else list(reversed(servers))
                rates: dict[str, float] = {}
                cpu: dict[str, float] = {}
                for server, sent in order:
                    os.sync()
                    url = f"{server.url}{path}"
                    load = functools.partial(
                        wrk,
                        url,
                        connections=scale.connections,
                        threads=2,
                        seconds=seconds,
                        headers=sent,
                    )
                    rate, cost = per_request(server.config_path, load)
                    key = "plain" if server is plain else server.side
                    rates[key], cpu[key] = rate.per_second, cost
                vs_reference.add("mirror", rates["mirror"])
                vs_reference.add("reference", rates["reference"])
                vs_plain.add("mirror", rates["mirror"])
                vs_plain.add("reference", rates["plain"])
                cpu_plain.add("mirror", cpu["mirror"])
                cpu_plain.add("reference", cpu["plain"])
            env.note(f"14 {scheme.name} {what}, requests/s: {vs_reference.describe()}")
            env.note(f"14 {scheme.name} {what}, unauthenticated mirror: {vs_plain.describe()}")
            env.note(f"14 {scheme.name} {what}, server CPU us per request, with auth | "
                     f"without: {cpu_plain.describe()}")  # fmt: skip
            connections = scale.connections
            rows.append(
                Row(14, f"{what} with {scheme.name} auth, {connections} connections",
                    "requests/s (wrk)", *vs_reference.medians(), at_least(VS_REFERENCE))
            )  # fmt: skip
            rows.append(
                Row(14, f"{what} with {scheme.name} auth: mirror vs itself without auth "
                    "(reference column: mirror without auth)",
                    "requests/s (wrk)", *vs_plain.medians(), at_least(VS_UNAUTHENTICATED))
            )  # fmt: skip
            rows.append(
                Row(14, f"{what} with {scheme.name} auth: mirror vs itself without auth "
                    "(reference column: mirror without auth)",
                    "server CPU us per request", *cpu_plain.medians(),
                    at_most(1 / VS_UNAUTHENTICATED))
            )  # fmt: skip
    return rows
