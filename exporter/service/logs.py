"""Structured logs (`logfmt` or `json`) on stderr with the standard library, and secret scrubbing.

Code never logs secrets on purpose; the scrubber is a second line of defence for messages that
quote foreign text (exception strings, URLs): it masks `Authorization:` values, `user:password@`
in URLs, `password=`/`token=` pairs and PEM private-key blocks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
     "<private key redacted>"),
    (re.compile(r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)(\"?)[^\"\n,}]+"), r"\1\2\3<redacted>"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key)(\s*[:=]\s*)(\"?)[^\s\"&,}]+"),
     r"\1\2\3<redacted>"),
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{8,}"), r"\1 <redacted>"),
    (re.compile(r"://([^/\s:@]+):[^/\s@]+@"), r"://\1:<redacted>@"),
)


def scrub(text: str) -> str:
    """Mask anything that looks like a credential."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name.removeprefix("netpol_exporter."),
        "msg": scrub(record.getMessage()),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            out[key] = scrub(value) if isinstance(value, str) else value
    if record.exc_info and record.exc_info[0] is not None:
        out["error"] = scrub(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
    return out


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, separators=(",", ":"))


_BARE = re.compile(r"^[^\s\"=\\]+$")


def _logfmt_value(value: Any) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    if _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())


def setup_logging(fmt: str = "logfmt", level: str = "info", stream: TextIO | None = None) -> None:
    """Route every `netpol_exporter.*` logger (and aiohttp's) to one stderr handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print every scrape; keep it for debug only.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
