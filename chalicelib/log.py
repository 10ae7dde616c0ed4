"""Structured logs: one JSON object per line, with the request id (and order id) in context.

Secrets and personal data never reach a log line: fields whose names say they are a secret
or personal data are redacted before formatting, whatever the caller passed.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import Any

from chalicelib import clock

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})

# Substrings of field names whose values are never logged.
_REDACTED_NAME_PARTS = (
    "secret", "password", "token", "session_key", "private_key", "api_key", "apiv3_key",
    "phone", "address", "authorization", "code", "encrypted",
)

_configured = False


def bind(**fields: str) -> contextvars.Token:
    """Add fields (request_id, order_id, ...) to every log line of the current request."""
    return _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v}})


def reset(token: contextvars.Token) -> None:
    _context.reset(token)


def _redact(fields: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        lowered = name.lower()
        if any(part in lowered for part in _REDACTED_NAME_PARTS) and lowered not in ("errcode", "code_name"):
            clean[name] = "[redacted]"
        else:
            clean[name] = value
    return clean


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": clock.to_iso(clock.from_epoch(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context.get(),
        }
        extra = getattr(record, "fields", None)
        if extra:
            line.update(_redact(extra))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure() -> None:
    """Install the JSON formatter on the root logger once (Lambda and chalice local alike)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # botocore and urllib3 debug lines can carry request bodies; keep them quiet.
    for noisy in ("botocore", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str) -> "StructuredLogger":
    return StructuredLogger(logging.getLogger(name))


class StructuredLogger:
    """`log.info("order placed", order_id=..., amount_fen=...)`: keyword fields become JSON keys."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def _log(self, level: int, message: str, exc_info: bool = False, **fields: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, message, exc_info=exc_info, extra={"fields": fields})

    def info(self, message: str, **fields: Any) -> None:
        self._log(logging.INFO, message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log(logging.WARNING, message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self._log(logging.ERROR, message, **fields)

    def exception(self, message: str, **fields: Any) -> None:
        self._log(logging.ERROR, message, exc_info=True, **fields)
