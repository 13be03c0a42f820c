"""Logging of ccbsd: stderr lines with journald priority prefixes and key=value context.

journald reads a ``<N>`` prefix on each stderr line as the syslog priority
(sd-daemon(3); ``SyslogLevelPrefix=`` is on by default), so ``<3>`` errors, ``<4>``
warnings, ``<6>`` info and ``<7>`` debug land with the right priority and colour.
Context goes behind the message as ``key=value`` pairs (values with blanks or quotes
are quoted) so that ``journalctl -u ccbsd | grep id=17`` works.

Use it as ``log.info("request activated", extra=kv(id=rid, caller="21"))``.
Owns only formatting and handler setup; it must not decide what is logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

#: Python level → sd-daemon priority prefix
PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}

ROOT = "ccbs_isdn"


def kv(**context: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` argument carrying key=value context for one log record."""
    return {"ctx": context}


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def format_context(context: dict[str, Any]) -> str:
    return " ".join(f"{key}={_quote(value)}" for key, value in context.items()
                    if value is not None)


class JournalFormatter(logging.Formatter):
    """``<6>message key=value ...`` (plus the exception, one line per frame)."""

    def __init__(self, *, prefix: bool = True) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        context: dict[str, Any] = dict(getattr(record, "ctx", None) or {})
        if record.name != ROOT and record.name.startswith(ROOT + "."):
            context = {"logger": record.name[len(ROOT) + 1:], **context}
        text = message
        if context:
            text = f"{message} {format_context(context)}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if not self.prefix:
            return text
        level = PRIORITY.get(record.levelno, 7 if record.levelno < logging.INFO else 3)
        # every physical line gets the prefix so a traceback keeps its priority
        return "\n".join(f"<{level}>{line}" for line in text.splitlines() or [""])


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Route the ``ccbs_isdn`` loggers to *stream* (stderr) with journald prefixes."""
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        if getattr(old, "_ccbsd", False):
            logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JournalFormatter())
    handler._ccbsd = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    set_level(level)
    return handler


def set_level(level: str) -> None:
    logging.getLogger(ROOT).setLevel(LEVELS.get(level, logging.INFO))
