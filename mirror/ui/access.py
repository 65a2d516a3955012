"""Who may see and delete what on the dashboard: the one seam to authentication.

`Permissions` turns a request into a `Permit` (raising `Unauthorized`, such as the auth
package's `Challenge`, when the request must first authenticate); a permit answers
"may this identity <action> repository <name>" for stored repository names. With no
authentication configured the dashboard uses `everything`; `controller_permissions`
asks an `AccessController` (htpasswd, token, silly) the same question the API asks it,
so a user sees only what they may pull and deletes only what they may delete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from starlette.requests import Request

from mirror.auth.access import AuthRequest, repository
from mirror.auth.controller import AccessController
from mirror.errors import Unauthorized

PULL = "pull"
DELETE = "delete"


class Permit(Protocol):
    unrestricted: bool  # True: every repository and action is allowed (skip filtering)

    async def may(self, name: str, action: str) -> bool:
        """Whether `action` (`pull`, `delete`) on stored repository `name` is allowed."""
        ...


# (request, login): login asks for the request's credentials even where anonymous
# access would do (the dashboard's sign-in link).
Permissions = Callable[[Request, bool], Awaitable[Permit]]


class _Everything:
    unrestricted = True

    async def may(self, name: str, action: str) -> bool:
        return True


EVERYTHING: Permit = _Everything()


async def everything(request: Request, login: bool = False) -> Permit:
    """No authentication: everything is visible, and deletable where deletes are on."""
    return EVERYTHING


class ControllerPermit:
    """An identity's answers from an `AccessController`, remembered for one request."""

    unrestricted = False

    def __init__(self, controller: AccessController, request: AuthRequest) -> None:
        self._controller = controller
        self._request = request
        self._answers: dict[tuple[str, str], bool] = {}

    async def may(self, name: str, action: str) -> bool:
        key = (name, action)
        answer = self._answers.get(key)
        if answer is None:
            try:
                await self._controller.authorized(self._request, repository(name, action))
                answer = True
            except Unauthorized:
                answer = False
            self._answers[key] = answer
        return answer


def controller_permissions(controller: AccessController) -> Permissions:
    """Permissions from `controller`: credentials a request carries are checked first
    (wrong ones are challenged), then each repository as the API would check it. A
    request without credentials is anonymous, seeing what anonymous pulls may, unless it
    is a `login`, which is challenged (a Basic challenge makes the browser ask)."""

    async def permit(request: Request, login: bool = False) -> Permit:
        auth = AuthRequest.from_asgi_headers(request.scope["headers"])
        if login or auth.authorization is not None:
            await controller.authorized(auth, ())
        return ControllerPermit(controller, auth)

    return permit


async def visible(permit: Permit, names: Sequence[str]) -> list[str]:
    """The names of `names` that `permit` may pull, in order."""
    if permit.unrestricted:
        return list(names)
    return [name for name in names if await permit.may(name, PULL)]
