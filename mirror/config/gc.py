"""`storage.maintenance.gc`: garbage collection while `mirror` serves (Zot's gcDelay)."""

from __future__ import annotations

from mirror.settings import Flag, PositiveDuration, setting, settings


@settings
class GCConfig:
    """Every `interval`, the collection `mirror garbage-collect` does, next to the
    serving registry; content written, pushed, mounted or used within `delay` is kept."""

    enabled: Flag = setting(
        default=False, doc="collect unreferenced blobs while serving (one process at a time)"
    )
    interval: PositiveDuration = setting(default=24 * 3600.0, doc="how often it runs")
    delay: PositiveDuration = setting(
        default=3600.0,
        doc="grace delay: content newer or used more recently is kept; longer than the "
        "longest push (first upload to manifest PUT)",
    )
    delete_untagged: Flag = setting(
        default=False,
        key="deleteuntagged",
        doc="also remove manifests no tag reaches (the children and referrers of kept "
        "ones stay), as `garbage-collect --delete-untagged`",
    )
