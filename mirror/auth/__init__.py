"""Authentication and access control of clients (layer 3, beside `cache/`).

The front end's whole interface is here: `required_accesses` (what a request needs),
`AuthRequest` (what a controller may read of it), an `AccessController` built by
`create_access_controller(name, **options)` (`htpasswd`, `token`, `silly`), its `Grant`
or `Challenge`, and `authorize` which does the three in one call. `AccessPolicy`,
`PolicyFile` and `parse_policy` are the access policy; `mirror.auth.tokenservice` is the
built-in token service. Controllers and the token service import their cryptography
only when built.
"""

from __future__ import annotations

from mirror.auth.access import Access, AuthRequest, Grant
from mirror.auth.challenge import Challenge
from mirror.auth.controller import AccessController, NameKey, authorize
from mirror.auth.policy import AccessPolicy, PolicySource
from mirror.auth.policyfile import PolicyError, PolicyFile, parse_policy
from mirror.auth.registry import create_access_controller, register
from mirror.auth.requirements import RouteKind, required_accesses

__all__ = [
    "Access",
    "AccessController",
    "AccessPolicy",
    "AuthRequest",
    "Challenge",
    "Grant",
    "NameKey",
    "PolicyError",
    "PolicyFile",
    "PolicySource",
    "RouteKind",
    "authorize",
    "create_access_controller",
    "parse_policy",
    "register",
    "required_accesses",
]
