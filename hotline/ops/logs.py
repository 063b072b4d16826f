"""Logging: lines for a person (the default) or one JSON object a line (HOTLINE_LOG_FORMAT=json)
for a log collector; either way without API keys, rating-link tokens or phone numbers.

`log_config(settings)` is a `logging.config.dictConfig` dictionary for our loggers and
uvicorn's (`hotline serve` hands it to uvicorn, so its workers log the same way);
`configure_logging(settings)` applies it in a process of ours (`hotline scheduler`).
"""

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any


class Redact(logging.Filter):
    """Log lines without secrets or personal data: the API keys some Open311 clients put in
    the address, the citizens' rating-link tokens, names and tokens given in a query string,
    and phone numbers (a search by phone, a caller's page) masked to their first three and last
    four digits."""

    patterns = (
        (re.compile(r"(api_key=)[^&\s]+"), r"\1***"),
        (re.compile(r"(/rate/)[^/?\s\"]+"), r"\1***"),
        (re.compile(r"([?&](?:[\w.-]*_)?(?:name|token)=)[^&\s\"]+"), r"\1***"),
        (re.compile(r"(?<!\d)(1\d{2})\d{4}(\d{4})(?!\d)"), r"\1****\2"),
        (re.compile(r"(?<!\d)(0\d{2,3}(?:-|%2D)?)\d{3,4}(\d{4})(?!\d)", re.IGNORECASE), r"\1****\2"),
    )

    def clean(self, text: str) -> str:
        for pattern, replacement in self.patterns:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.clean(a) if isinstance(a, str) else a for a in record.args)
        return True


REDACT = Redact()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, process id, message, and the exception if any;
    the message and the exception cleaned like the access log."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": REDACT.clean(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = REDACT.clean(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class TextFormatter(logging.Formatter):
    """Lines for a person: the time in the process's zone (TZ), with its offset and
    milliseconds (2026-12-07T09:30:00.123+08:00), so a line read on another machine, or
    beside the JSON lines' UTC, names one moment."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def log_config(settings) -> dict[str, Any]:
    """The logging configuration the settings ask for (format and level)."""
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"()": TextFormatter, "fmt": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["redact"],
        "stream": "ext://sys.stderr",
    }
    logger = {"handlers": ["main"], "level": settings.log_level, "propagate": False}
    # APScheduler says at INFO that each run of each job began and ended: two lines a second
    # for the one-second delivery job, more than the rest of the log. Its warnings and errors
    # (a missed or failed run) are kept; DEBUG shows everything.
    quiet = {**logger, "level": settings.log_level if settings.log_level in ("DEBUG", "ERROR") else "WARNING"}
    loggers = {name: logger for name in ("hotline", "uvicorn", "uvicorn.access")}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": Redact}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {**loggers, "apscheduler": quiet},
    }


def configure_logging(settings) -> None:
    logging.config.dictConfig(log_config(settings))
