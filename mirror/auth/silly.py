"""registry:2's `silly` access controller, for development only.

Any non-empty `Authorization` header is accepted, whatever it holds, and the grant is
for the user `silly`; without one the challenge is
`Bearer realm="..",service="..",scope=".."`. It checks nothing: never expose it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mirror.auth.access import Access, AuthRequest, Grant, scope_param
from mirror.auth.challenge import AUTHENTICATION_REQUIRED, Challenge, auth_params
from mirror.auth.credentials import MAX_AUTHORIZATION_LENGTH


class SillyAccessController:
    def __init__(self, *, realm: str, service: str) -> None:
        for option, value in (("realm", realm), ("service", service)):
            if not isinstance(value, str):
                raise ValueError(f'"{option}" must be set for the silly access controller')
        self.realm = realm
        self.service = service

    async def authorized(self, request: AuthRequest, accesses: Sequence[Access]) -> Grant:
        header = (request.authorization or "").strip()
        if not header or len(header) > MAX_AUTHORIZATION_LENGTH:
            params = [
                ("realm", self.realm),
                ("service", self.service),
                ("scope", scope_param(accesses)),
            ]
            raise Challenge(
                AUTHENTICATION_REQUIRED,
                www_authenticate=auth_params("Bearer", params),
                missing=accesses,
                reason="no Authorization header",
            )
        return Grant("silly", accesses=tuple(accesses))
