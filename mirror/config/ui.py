"""`http.ui`: the web dashboard on the main port (an extension: registry:2 has none)."""

from __future__ import annotations

from mirror.settings import Flag, setting, settings


@settings
class UIConfig:
    enabled: Flag = setting(
        default=True,
        doc="serve the dashboard at `/ui/` (a browser asking for `/` is sent there); "
        "false: neither is served",
    )
