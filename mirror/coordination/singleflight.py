"""In-process coalescing: concurrent calls with one key share one execution."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class SingleFlight:
    """`run(key, fn, *args)`: the first caller runs `fn(*args)`; callers arriving meanwhile
    get its result.

    The work runs in its own task, so a caller that is cancelled (client gone) does not
    cancel it for the others. Exceptions reach every caller. Callers of one key must ask
    for the same work: the arguments of a joining caller are not looked at.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self.joined = 0

    async def run(
        self, key: Hashable, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        future = self._flights.get(key)
        if future is None:
            future = asyncio.ensure_future(fn(*args, **kwargs))
            self._flights[key] = future
            future.add_done_callback(lambda _: self._forget(key, future))
        else:
            self.joined += 1
        result: T = await asyncio.shield(future)
        return result

    def _forget(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is future:
            del self._flights[key]
        if not future.cancelled():
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
