"""registry:2's `htpasswd` access controller, with the access policy applied.

Credentials are HTTP Basic, checked against the htpasswd file (`mirror.auth.users`).
Without a policy every valid user may do everything, as in registry:2. With one, a
valid user gets what the policy allows them, and a request without credentials gets
what it allows `anonymous` (registry:2 has no anonymous access: without a policy, none).
Wrong credentials are refused even where anonymous access would do: a client that sent
a password wants to know it is wrong; but an empty pair (`Basic Og==`, the base64 of
":", what containers/image sends when it has no credentials) is no credentials. The
`/v2/` base route always needs credentials,
as in registry:2, so that `docker login` checks them. The challenge is
`Basic realm="<realm>"`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from mirror.auth.access import Access, AuthRequest, Grant
from mirror.auth.challenge import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_ACCESS,
    INVALID_CREDENTIALS,
    Challenge,
    auth_params,
)
from mirror.auth.controller import NameKey, policy_names
from mirror.auth.credentials import MalformedCredentials, is_empty_basic, parse_basic
from mirror.auth.policy import AccessPolicy, PolicySource
from mirror.auth.users import DEFAULT_CACHE_SIZE, HtpasswdUsers

log = logging.getLogger("mirror.auth")


class HtpasswdAccessController:
    def __init__(
        self,
        *,
        realm: str,
        path: str | os.PathLike[str],
        policy: PolicySource | None = None,
        name_key: NameKey | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        users: HtpasswdUsers | None = None,
    ) -> None:
        self.realm = realm
        self.users = users or HtpasswdUsers(path, cache_size=cache_size)
        self.policy: PolicySource = policy or AccessPolicy.any_authenticated()
        self.name_key = name_key
        self.www_authenticate = auth_params("Basic", [("realm", realm)]) if realm else "Basic"

    async def authorized(self, request: AuthRequest, accesses: Sequence[Access]) -> Grant:
        policy = self.policy.current()
        judged = policy_names(accesses, self.name_key)
        header = request.authorization
        if header is None or is_empty_basic(header):
            missing = [
                a for a, j in zip(accesses, judged, strict=True) if not policy.allows(None, j)
            ]
            if not accesses or missing:
                raise self._challenge(
                    AUTHENTICATION_REQUIRED, missing or accesses, "no credentials"
                )
            return Grant(None, accesses=tuple(accesses))
        try:
            credentials = parse_basic(header)
        except MalformedCredentials as exc:
            raise self._challenge(INVALID_CREDENTIALS, accesses, str(exc)) from None
        if not await self.users.verify(credentials.username, credentials.password):
            log.info("htpasswd: user %r failed to authenticate", credentials.username)
            raise self._challenge(INVALID_CREDENTIALS, accesses, "wrong user name or password")
        user = credentials.username
        missing = [a for a, j in zip(accesses, judged, strict=True) if not policy.allows(user, j)]
        if missing:
            raise self._challenge(
                INSUFFICIENT_ACCESS, missing, f"user {user!r} lacks {len(missing)} access(es)"
            )
        return Grant(user, policy.groups_of(user), tuple(accesses))

    def _challenge(self, message: str, missing: Sequence[Access], reason: str) -> Challenge:
        return Challenge(
            message, www_authenticate=self.www_authenticate, missing=missing, reason=reason
        )
