"""Access controllers by name, built from plain parameters (registry:2's option names).

`create_access_controller("htpasswd", realm=..., path=...)`; the extra keyword
arguments of each constructor (`policy`, `name_key`, cache sizes) come from the
composition root, never from a user's config directly. Controllers are imported when
first built, so an unused one costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mirror.auth.controller import AccessController

Factory = Callable[..., AccessController]

# name -> (module, class); a plugin may `register` more.
_BUILTIN: dict[str, tuple[str, str]] = {
    "htpasswd": ("mirror.auth.htpasswd", "HtpasswdAccessController"),
    "token": ("mirror.auth.token", "TokenAccessController"),
    "silly": ("mirror.auth.silly", "SillyAccessController"),
}
_REGISTERED: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make `factory` buildable as `name`; ValueError if the name is taken."""
    if name in _BUILTIN or name in _REGISTERED:
        raise ValueError(f"access controller {name!r} is already registered")
    _REGISTERED[name] = factory


def controller_names() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED})


def create_access_controller(name: str, **options: Any) -> AccessController:
    """Build the controller registered as `name`; ValueError for an unknown name, and
    whatever its constructor raises (ValueError subclasses, FileNotFoundError) for
    options it cannot work with."""
    factory = _REGISTERED.get(name)
    if factory is None:
        if name not in _BUILTIN:
            raise ValueError(
                f"no access controller named {name!r} (one of {', '.join(controller_names())})"
            )
        module, attribute = _BUILTIN[name]
        factory = getattr(importlib.import_module(module), attribute)
    return factory(**options)
