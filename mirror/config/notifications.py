"""The `notifications` section: registry:2's webhook endpoints, each with a durable queue.

The keys and defaults are the reference's (`timeout` 1s, `threshold` 10, `backoff` 1s,
a value of zero or less meaning the default, as it does there); `queuelimit` and
`maxbatch` are this registry's own. `ignoredmediatypes` and `ignore.mediatypes` are one
list, as the reference merges them.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, field_validator

from mirror.config.addresses import AnyHTTPURL
from mirror.config.http import Headers
from mirror.settings import (
    Duration,
    Flag,
    Integer,
    Problem,
    Text,
    TextList,
    TypeName,
    setting,
    settings,
)

ACTIONS: Final = ("pull", "push", "mount", "delete")


def _actions(actions: tuple[str, ...]) -> tuple[str, ...]:
    for action in actions:
        if action not in ACTIONS:
            raise Problem(f"unknown action {action!r} (expected {', '.join(ACTIONS)})")
    return actions


Actions = Annotated[TextList, AfterValidator(_actions), TypeName("list of actions")]


@settings
class EventsConfig:
    include_references: Flag = setting(
        default=False,
        key="includereferences",
        doc="manifest push and pull events list the manifest's references (config, layers, "
        "child manifests)",
    )


@settings
class IgnoreConfig:
    media_types: TextList = setting(
        default=(), key="mediatypes", doc="events of targets with these media types are not sent"
    )
    actions: Actions = setting(
        default=(), doc="events of these actions (`pull`, `push`, `mount`, `delete`) are not sent"
    )


@settings
class EndpointConfig:
    name: Text = setting(min_length=1, doc="the endpoint's name (logs, metrics, queue directory)")
    url: AnyHTTPURL = setting(doc="where events are POSTed")
    disabled: Flag = setting(default=False, doc="keep the entry but send nothing to it")
    headers: Headers = setting(
        default=(), omit_empty=True, doc="headers sent with every POST (a value or a list)"
    )
    timeout: Duration = setting(default=1.0, doc="one delivery attempt (0 or less: 1s)")
    threshold: Integer = setting(
        default=10,
        doc="failed attempts in a row before retries wait `backoff` between them (0 or less: 10)",
    )
    backoff: Duration = setting(
        default=1.0, doc="the wait between retries past the threshold (0 or less: 1s)"
    )
    ignored_media_types: TextList = setting(
        default=(), key="ignoredmediatypes", doc="as `ignore.mediatypes` (merged with it)"
    )
    ignore: IgnoreConfig = setting(default_factory=IgnoreConfig, doc="events not sent")
    queue_limit: Integer = setting(
        default=100_000,
        ge=1,
        key="queuelimit",
        doc="events kept for the endpoint while it is unreachable; past it the oldest are "
        "dropped (counted and logged)",
    )
    max_batch: Integer = setting(
        default=1, ge=1, key="maxbatch", doc="events per POSTed envelope, at most"
    )

    @field_validator("timeout", "backoff", mode="after")
    @classmethod
    def _positive_or_default(cls, seconds: float) -> float:
        return seconds if seconds > 0 else 1.0

    @field_validator("threshold", mode="after")
    @classmethod
    def _threshold_or_default(cls, threshold: int) -> int:
        return threshold if threshold > 0 else 10

    @property
    def all_ignored_media_types(self) -> frozenset[str]:
        return frozenset(self.ignored_media_types) | frozenset(self.ignore.media_types)


@settings
class NotificationsConfig:
    events: EventsConfig = setting(default_factory=EventsConfig, doc="what events carry")
    endpoints: tuple[EndpointConfig, ...] = setting(
        default=(), doc="webhook endpoints, each with its own durable queue"
    )

    @field_validator("endpoints", mode="after")
    @classmethod
    def _unique_names(cls, endpoints: tuple[EndpointConfig, ...]) -> tuple[EndpointConfig, ...]:
        names = [endpoint.name for endpoint in endpoints]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise Problem(f"endpoint name {name!r} is used twice", (index, "name"))
        return endpoints
