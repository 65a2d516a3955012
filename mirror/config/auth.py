"""The `auth` section: registry:2's access controllers, plus mirror's policy and token service.

registry:2's block is unchanged: exactly one of `htpasswd` (`realm`, `path`), `token`
(`realm`, `service`, `issuer`, `rootcertbundle`, `jwks`, `autoredirect`,
`autoredirectpath`, `signingalgorithms`) or `silly` (`realm`, `service`). Beside it,
mirror's own keys: `policy` (inline) or `policyfile` (re-read when it changes), who may do
what by repository pattern, applied to htpasswd logins and to the tokens the built-in
service issues; `anonymouspull`, the mirror's ready-made policy (anyone pulls cached
upstream content, everything else needs a login); `tokenservice`, the built-in token
endpoint on its own listener. The policy's content is checked when the registry starts
(and by `check-config`), by `mirror.auth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, field_validator, model_validator

from mirror.config.addresses import ListenAddress
from mirror.settings import (
    Flag,
    PositiveDuration,
    Problem,
    RawText,
    Text,
    TextList,
    TypeName,
    setting,
    settings,
)

CONTROLLERS = ("htpasswd", "token", "silly")
# The token spec: "a token should never be returned with less than 60 seconds to live".
MIN_TOKEN_LIFETIME = 60.0


def _plain(value: object, where: tuple[str | int, ...] = ()) -> object:
    """`value` with the environment's untyped texts parsed, mappings keyed by strings."""
    if isinstance(value, RawText):
        try:
            value = value.parsed()
        except Problem as problem:
            raise problem.under(*where) if where else problem from None
    if isinstance(value, Mapping):
        return {str(key): _plain(item, (*where, str(key))) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, (*where, index)) for index, item in enumerate(value)]
    return value


def _policy(value: object) -> dict[str, Any] | None:
    plain = _plain(value)
    if plain is None:
        return None
    if not isinstance(plain, dict):
        raise Problem(f"expected a mapping with groups, catalog and rules, got {plain!r}")
    return plain


# Free-form here: its shape and meaning are `mirror.auth.parse_policy`'s (L3), which the
# composition root applies before serving.
PolicyData = Annotated[
    dict[str, Any] | None,
    PlainValidator(_policy),
    PlainSerializer(lambda data: data),
    TypeName("access policy (`groups`, `catalog`, `rules`)"),
]


@settings
class HtpasswdAuthConfig:
    realm: Text = setting(min_length=1, doc="the realm of the `Basic` challenge")
    path: Text = setting(
        min_length=1, doc="the htpasswd file (bcrypt entries only; re-read when it changes)"
    )


@settings
class TokenAuthConfig:
    realm: Text = setting(min_length=1, doc="the token service URL clients are sent to")
    service: Text = setting(min_length=1, doc="the service name tokens must be issued for (`aud`)")
    issuer: Text = setting(min_length=1, doc="the issuer tokens must name (`iss`)")
    rootcertbundle: Text = setting(
        default="",
        doc="PEM certificates whose keys (and `x5c` chains) sign tokens; with `tokenservice` "
        "and no `jwks`, empty means the built-in service's certificate",
    )
    jwks: Text = setting(default="", doc="a JWK set file of trusted token keys (by `kid`)")
    autoredirect: Flag = setting(
        default=False,
        doc="send clients to `<X-Forwarded-Proto or https>://<Host><autoredirectpath>` "
        "instead of `realm`",
    )
    autoredirectpath: Text = setting(default="/auth/token", doc="the path `autoredirect` uses")
    signingalgorithms: TextList = setting(
        default=(),
        doc="accepted `alg` values (default: every RS, PS, ES and EdDSA algorithm; never "
        "HMAC or `none`)",
    )


@settings
class SillyAuthConfig:
    realm: Text = setting(doc="the realm of the `Bearer` challenge")
    service: Text = setting(doc="the service of the challenge")


@settings
class TokenServiceConfig:
    addr: ListenAddress = setting(
        doc="`host:port` the token endpoint listens on (plain HTTP: put TLS in front of it "
        "if it is reached over a network); its path is the one of `auth.token.realm`"
    )
    htpasswd: Text = setting(
        default="",
        doc="the users' htpasswd file (bcrypt; re-read when it changes); empty: every token "
        "is anonymous",
    )
    key: Text = setting(
        default="", doc="PEM private key signing the tokens (RSA >= 2048 bits, EC or Ed25519)"
    )
    certificate: Text = setting(
        default="", doc="PEM certificate of `key` (its `x5c`, which registry:2 verifies)"
    )
    keydirectory: Text = setting(
        default="",
        doc="without `key`: where an EC P-256 key and certificate are generated once and kept "
        "(default `<cache.directory>/tokenservice`)",
    )
    expiration: PositiveDuration = setting(
        default=300.0, doc="how long an access token is valid (at least 60s)"
    )
    refreshexpiration: PositiveDuration = setting(
        default=30 * 86400.0,
        doc="how long a refresh token (`offline_token`, `access_type=offline`) is valid",
    )

    @field_validator("expiration", mode="after")
    @classmethod
    def _long_enough(cls, seconds: float) -> float:
        if seconds < MIN_TOKEN_LIFETIME:
            raise Problem("must be at least 60s (the token spec's minimum)")
        return seconds

    @model_validator(mode="after")
    def _one_key(self) -> TokenServiceConfig:
        if bool(self.key) != bool(self.certificate):
            missing = "certificate" if self.key else "key"
            raise Problem("missing: give both key and certificate, or neither", (missing,))
        if self.key and self.keydirectory:
            raise Problem("give key and certificate, or keydirectory, not both", ("keydirectory",))
        return self


@settings
class AuthConfig:
    htpasswd: HtpasswdAuthConfig | None = setting(
        default=None, doc="HTTP Basic logins checked against an htpasswd file"
    )
    token: TokenAuthConfig | None = setting(
        default=None, doc="Bearer tokens of the Docker token spec (JWT)"
    )
    silly: SillyAuthConfig | None = setting(
        default=None, doc="any `Authorization` header is accepted: development only"
    )
    policy: PolicyData = setting(
        default=None,
        doc="who may do what by repository pattern (see *Access control*); applies to "
        "htpasswd logins and the built-in token service; none: any valid user may do "
        "everything",
    )
    policyfile: Text = setting(
        default="", doc="the policy in a YAML file of its own, re-read when it changes"
    )
    anonymouspull: Flag = setting(
        default=False,
        doc="without a policy: anyone may pull cached upstream content (`<upstream>/**`), "
        "everything else needs a login",
    )
    tokenservice: TokenServiceConfig | None = setting(
        default=None, doc="present: the built-in token service (needs `auth.token`)"
    )

    @property
    def controller(self) -> str:
        """The configured access controller's name."""
        for name in CONTROLLERS:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated: one controller")  # pragma: no cover

    @property
    def options(self) -> HtpasswdAuthConfig | TokenAuthConfig | SillyAuthConfig:
        found: HtpasswdAuthConfig | TokenAuthConfig | SillyAuthConfig = getattr(
            self, self.controller
        )
        return found

    @property
    def has_policy(self) -> bool:
        return self.policy is not None or bool(self.policyfile) or self.anonymouspull

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        given = [name for name in CONTROLLERS if getattr(self, name) is not None]
        if not given:
            raise Problem(f"configure one access controller: {', '.join(CONTROLLERS)}")
        if len(given) > 1:
            raise Problem(f"more than one access controller: {', '.join(given)}")
        policies = [
            key
            for key, present in (
                ("policy", self.policy is not None),
                ("policyfile", bool(self.policyfile)),
                ("anonymouspull", self.anonymouspull),
            )
            if present
        ]
        if len(policies) > 1:
            raise Problem(f"give one of {', '.join(policies)}, not several", (policies[-1],))
        if self.tokenservice is not None and self.token is None:
            raise Problem("the token service needs auth.token (what verifies its tokens)", ())
        if policies and (
            self.silly is not None or (self.token is not None and self.tokenservice is None)
        ):
            where = "silly" if self.silly is not None else "token without tokenservice"
            raise Problem(
                f"a policy applies to htpasswd logins and the built-in token service, not to "
                f"{where} (an external token service decides what its tokens allow)",
                (policies[0],),
            )
        return self
