"""The `log` section: how much the servers and `mirror` log, and whether requests are."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mirror.settings import Flag, OneOf, Text, ignored, setting, settings

Level = Annotated[Literal["error", "warn", "info", "debug"], OneOf(warning="warn")]


@settings
class AccessLogConfig:
    disabled: Flag = setting(default=False, doc="turn the access log off")


@settings
class LogConfig:
    level: Level = setting(
        default="info", doc="what the servers and `mirror` log (`warning` means `warn`)"
    )
    accesslog: AccessLogConfig = setting(default_factory=AccessLogConfig, doc="request logging")
    formatter: Text = ignored(default="", why="one plain text format")
    fields: Any = ignored(default=None, why="no structured fields")

    @property
    def access_log(self) -> bool:
        """Whether the servers log every request."""
        return not self.accesslog.disabled
