"""The `cluster` section: how the replicas of one store reach each other.

Present with `advertise` (on an object store: the filesystem driver's replicas share its
temp files instead), a replica names itself in the locators of the downloads it
holds, so that followers on other hosts stream the bytes from it before the download is
committed (Zot names its scale-out section `cluster` too; registry:2 has none). Every
replica of the store needs the same `secret`: it signs the internal requests, which
registry clients cannot make without it.
"""

from __future__ import annotations

from pydantic import model_validator

from mirror.config.addresses import BaseURL
from mirror.settings import Problem, Secret, setting, settings

MIN_SECRET = 16


@settings
class ClusterConfig:
    advertise: BaseURL = setting(
        default="",
        doc="this replica's URL as the other replicas reach it (`http://10.0.0.5:5000`, "
        "its own listener); set (object stores only): followers of its downloads on other "
        "hosts stream them from it through `/_mirror/partial` (empty: they wait for the "
        "commit)",
    )
    secret: Secret = setting(
        default="",
        doc="shared by every replica (at least 16 characters; `openssl rand -hex 32`): "
        "signs the requests of `/_mirror/partial`, which are refused without it",
    )

    @model_validator(mode="after")
    def _secret_given(self) -> ClusterConfig:
        if self.advertise and len(self.secret) < MIN_SECRET:
            raise Problem(
                f"advertise needs a secret of at least {MIN_SECRET} characters, the same on "
                "every replica",
                ("secret",),
            )
        return self
