"""Minting access tokens: the requested scopes intersected with what the policy allows.

As the token spec says, a scope the user may not have is not an error: the token holds
the intersection (possibly empty), and the registry refuses what is missing. Scope
types other than `repository` (its deprecated class is ignored) and `registry:catalog`
are left out, as are unknown actions. Tokens follow jwt.md: `iss`, `sub` (empty for
anonymous), `aud` (a single string, which registry:2 requires), `exp`, `nbf`, `iat`,
`jti`, and `access`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mirror.auth.access import ANY_ACTION, CATALOG, REGISTRY, REPOSITORY, REPOSITORY_ACTIONS
from mirror.auth.controller import NameKey
from mirror.auth.policy import PolicySource, action_allowed
from mirror.auth.scope import ResourceScope
from mirror.auth.tokenservice.signing import SigningKey

DEFAULT_LIFETIME = 300
# The spec: "a token should never be returned with less than 60 seconds to live".
MIN_LIFETIME = 60
_KNOWN_ACTIONS = REPOSITORY_ACTIONS | {ANY_ACTION}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime
    granted: tuple[ResourceScope, ...]

    @property
    def issued_at_text(self) -> str:
        """RFC 3339, UTC."""
        return self.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def scope(self) -> str:
        """The granted scopes, space-separated (the OAuth2 response's `scope`)."""
        return " ".join(str(scope) for scope in self.granted if scope.actions)


class TokenIssuer:
    def __init__(
        self,
        *,
        key: SigningKey,
        issuer: str,
        service: str,
        policy: PolicySource,
        lifetime: int = DEFAULT_LIFETIME,
        name_key: NameKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime < MIN_LIFETIME:
            raise ValueError(f"a token lifetime must be at least {MIN_LIFETIME} seconds")
        self.key = key
        self.issuer = issuer
        self.service = service
        self.policy = policy
        self.lifetime = lifetime
        self.name_key = name_key
        self.clock = clock

    def grant(self, user: str | None, scopes: Sequence[ResourceScope]) -> list[ResourceScope]:
        """For each requested resource (merged, in order), the actions the policy allows."""
        policy = self.policy.current()
        merged: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            if not _known(scope):
                continue
            judged = (
                self.name_key(scope.name)
                if self.name_key and scope.type == REPOSITORY
                else scope.name
            )
            allowed = policy.actions(user, scope.type, judged)
            actions = merged.setdefault((scope.type, scope.name), [])
            for action in scope.actions:
                if (
                    action in _KNOWN_ACTIONS
                    and action not in actions
                    and action_allowed(allowed, action)
                ):
                    actions.append(action)
        return [
            ResourceScope(kind, name, tuple(actions)) for (kind, name), actions in merged.items()
        ]

    def issue(self, user: str | None, scopes: Sequence[ResourceScope]) -> IssuedToken:
        granted = self.grant(user, scopes)
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": [
                {"type": scope.type, "name": scope.name, "actions": list(scope.actions)}
                for scope in granted
            ],
        }
        return IssuedToken(
            self.key.sign(claims), self.lifetime, datetime.fromtimestamp(now, UTC), tuple(granted)
        )


def _known(scope: ResourceScope) -> bool:
    if scope.type == REPOSITORY:
        return True
    return scope.type == REGISTRY and scope.name == CATALOG
