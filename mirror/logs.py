"""Log lines as ``log.formatter`` says: ``text``, ``json`` or ``logstash``, with
``log.fields`` and the request id on every line.

One handler on stderr (line-buffered even into a pipe) serves `mirror`'s loggers and
the servers' (granian's, uvicorn's), so a worker's every line has one format.
`dict_config` is handed to the server, which applies it in each worker process; the
servers' own access logs are off and `mirror.access` (the HTTP edge) writes one line
per request instead, in the request's context, so it carries the request id too.

JSON lines come from python-json-logger (a well-kept formatter that handles extras,
exceptions and non-JSON values); the text line is the standard library's formatter with
the request id and fields appended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from mirror import requestid

FORMATTERS: Final = ("text", "json", "logstash")
LEVELS: Final = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
# Every logger a worker writes through: ours and the servers'.
LOGGERS: Final = ("mirror", "_granian", "granian", "uvicorn", "uvicorn.error", "uvicorn.access")
# Attributes the servers add to records that mean nothing in a line (uvicorn's colours).
_NOISE: Final = ("color_message", "request_id", "taskName")

Fields = Sequence[tuple[str, object]]


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id``: the current request's id, or "" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = requestid.current() or ""
        return True


def _quoted(value: object) -> str:
    text = str(value)
    if text and not any(ch.isspace() or ch in '"=' for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> request_id=<id> <field>=<value>...``"""

    def __init__(self, fields: Fields = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._suffix = "".join(f" {name}={_quoted(value)}" for name, value in fields)
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads read it whole

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The standard library's time, its seconds part rendered once a second (an
        access line per request would render it thousands of times)."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, stamp = self._second
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, stamp)
        return f"{stamp},{int(record.msecs):03d}"  # the standard `default_msec_format`

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        rid = getattr(record, "request_id", "")
        return f"{line} request_id={rid}{self._suffix}" if rid else line + self._suffix


def _iso(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``msg``, ``request_id``
    (in a request), the extras a call passed, then `fields` (as logrus' JSON does)."""

    def __init__(self, fields: Fields = ()) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, *_NOISE], static_fields=dict(fields))

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _iso(record)
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["msg"] = record.getMessage()
        if getattr(record, "request_id", ""):
            log_data["request_id"] = record.__dict__["request_id"]
        super().add_fields(log_data, record, message_dict)
        log_data.pop("message", None)


class LogstashFormatter(JsonFormatter):
    """Logstash's JSON event: ``@timestamp``, ``@version``, ``message``, ``level``,
    ``logger_name``, ``request_id``, the extras and `fields`."""

    def __init__(self, fields: Fields = ()) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, *_NOISE], static_fields=dict(fields))

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["@timestamp"] = _iso(record)
        log_data["@version"] = "1"
        log_data["message"] = record.getMessage()
        log_data["level"] = record.levelname.lower()
        log_data["logger_name"] = record.name
        if getattr(record, "request_id", ""):
            log_data["request_id"] = record.__dict__["request_id"]
        super().add_fields(log_data, record, message_dict)


def formatter(kind: str, fields: Fields = ()) -> logging.Formatter:
    """The formatter `log.formatter` names; ValueError for another name."""
    if kind == "text":
        return TextFormatter(fields)
    if kind == "json":
        return JsonLineFormatter(fields)
    if kind == "logstash":
        return LogstashFormatter(fields)
    raise ValueError(f"log formatter must be one of {', '.join(FORMATTERS)}, not {kind!r}")


def dict_config(
    kind: str, fields: Fields = (), level: str = "info", loggers: Iterable[str] = LOGGERS
) -> dict[str, Any]:
    """A `logging.config.dictConfig` for a worker: one stderr handler, this format."""
    formatter(kind, fields)  # refuse a bad name here, not in a worker
    name = logging.getLevelName(LEVELS[level])
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"mirror": {"()": formatter, "kind": kind, "fields": list(fields)}},
        "handlers": {
            "mirror": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "mirror",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            logger: {"handlers": ["mirror"], "level": name, "propagate": False}
            for logger in loggers
        },
        # Libraries' warnings (asyncio, httpx, ...) in the same format.
        "root": {"handlers": ["mirror"], "level": "WARNING"},
    }


def lean_records() -> None:
    """Stop `logging` from collecting what no `mirror` format shows: the caller's file and
    line (a walk up the stack for every record), the thread's and process's names. For a
    server worker, which writes an access line per request."""
    logging._srcfile = None  # the switch the logging documentation names
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure(kind: str, fields: Fields = (), level: str = "info") -> None:
    """Apply `dict_config` in this process (for an app built outside `mirror serve`)."""
    import logging.config

    logging.config.dictConfig(dict_config(kind, fields, level))
