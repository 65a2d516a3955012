"""obstore HTTP client and retry options for a driver's `Tuning`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from mirror.store.drivers.objsettings import Tuning

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig


def retry_config(tuning: Tuning, *, max_retries: int | None = None) -> RetryConfig:
    """obstore's bounded retries for `tuning` (`max_retries` overrides its count)."""
    return {
        "max_retries": tuning.max_retries if max_retries is None else max_retries,
        "retry_timeout": timedelta(seconds=tuning.retry_timeout),
        "backoff": {
            "init_backoff": timedelta(seconds=tuning.backoff_initial),
            "max_backoff": timedelta(seconds=tuning.backoff_max),
            "base": 2,
        },
    }


def request_options(
    tuning: Tuning, allow_http: bool, skip_verify: bool, user_agent: str | None = None
) -> ClientConfig:
    """HTTP client options for bounded requests (everything but streaming reads)."""
    options: ClientConfig = {
        "allow_http": allow_http,
        "allow_invalid_certificates": skip_verify,
        "connect_timeout": timedelta(seconds=tuning.connect_timeout),
        "timeout": timedelta(seconds=tuning.request_timeout),
        "default_content_type": "application/octet-stream",
    }
    if user_agent is not None:
        options["user_agent"] = user_agent
    return options


def stream_options(
    tuning: Tuning, allow_http: bool, skip_verify: bool, user_agent: str | None = None
) -> ClientConfig:
    """HTTP client options for streaming reads: as long as the reader takes, up to
    `stream_timeout`, but failing when the store sends nothing for `stall_timeout`."""
    options = request_options(tuning, allow_http, skip_verify, user_agent)
    options["timeout"] = timedelta(seconds=tuning.stream_timeout)
    options["read_timeout"] = timedelta(seconds=tuning.stall_timeout)
    return options
