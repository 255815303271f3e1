"""JSON lines logging for every pgw process, with personal data scrubbed before rendering.

Each line has an ISO UTC ``timestamp``, ``level``, ``service``, ``event`` and the context bound with
:func:`bind_request_id` or ``structlog.contextvars``; stdlib records (grpc, ...) share the pipeline.
:func:`redact` runs last before rendering:

* every string, at any depth and in dict keys, loses 18-character person ids (``[id]``), unified
  social credit codes (``[code]``), 13-19-digit card-like runs, contiguous or grouped by spaces or
  dashes (``[card]``), and longer digit runs (``[digits]``); integers of 13+ digits likewise;
* values under keys matching :data:`DENY_KEYS` become ``[redacted]`` unless they are bool or None;
* keys in :data:`ALLOW_KEYS` are never key-redacted, but their strings are still scrubbed
  (``event`` is free text); only a top-level ``request_id`` shaped as a UUID is kept verbatim.

Tracebacks may hold personal data, so exceptions become ``exc_type`` and a scrubbed ``exc_msg``;
``PGW_LOG_TRACEBACKS=1`` (development only) adds the scrubbed traceback as ``exception``. Names in
free text cannot be detected: log them under a deny-listed key, never in the event message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from contextvars import Token
from typing import IO, Any, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

__all__ = ["ALLOW_KEYS", "DENY_KEYS", "bind_request_id", "configure_logging", "default_logging",
           "get_logger", "redact"]

#: Keys (case-insensitive glob patterns) whose values are always replaced by ``[redacted]``.
DENY_KEYS: tuple[str, ...] = (
    "name", "full_name", "subject", "subjects", "person_id", "person_ids", "id_number",
    "card_number", "amount", "income*", "*_base", "value", "values", "payroll*", "salary",
)
#: Keys whose values are never replaced by ``[redacted]`` (their strings are still scrubbed).
ALLOW_KEYS: frozenset[str] = frozenset({
    "event", "level", "timestamp", "service", "request_id", "status", "code", "method",
    "partner", "purpose", "agreement", "duration_ms", "count", "subject_count",
})
_DENY_RE = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in DENY_KEYS))
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_RE = re.compile(r"(?<![0-9])[0-9]{17}(?:[0-9](?![0-9])|[Xx])")
_USCC_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-HJ-NP-RTUW-Y]{18}(?![0-9A-Za-z])", re.IGNORECASE)
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}", re.IGNORECASE)
_GROUPED_RE = re.compile(r"(?<![0-9A-Za-z])[0-9]{3,6}(?:[ -][0-9]{3,8}){2,5}(?![0-9A-Za-z])")
_RUN_RE = re.compile(r"(?<![0-9])[0-9]{13,}(?![0-9])")
_UUID_RE = re.compile(r"[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}")
_HANDLER_MARK = "_pgw_logs_handler"


def _id_valid(s: str) -> bool:
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == s[17].upper()


def _uscc_valid(s: str) -> bool:
    digits = [_USCC_ALPHABET.find(c) for c in s.upper()]
    total = sum(d * pow(3, i, 31) for i, d in enumerate(digits[:17]))
    return -1 not in digits and (31 - total % 31) % 31 == digits[17]


def _scrub(text: str) -> str:
    """Replace ids, credit codes, card numbers and long digit runs inside ``text``."""
    text = _ID_RE.sub(lambda m: "[code]" if not _id_valid(s := m.group()) and _uscc_valid(s)
                      else "[id]", text)
    text = _USCC_RE.sub(lambda m: "[code]" if _USCC_SHAPE.fullmatch(s := m.group())
                        or _uscc_valid(s) else s, text)
    text = _GROUPED_RE.sub(lambda m: "[card]" if 13 <= sum(c.isdigit() for c in m.group()) <= 19
                           else m.group(), text)
    return _RUN_RE.sub(lambda m: "[card]" if len(m.group()) <= 19 else "[digits]", text)


def _clean(key: str | None, value: Any, depth: int = 0) -> Any:
    lkey = key.lower() if key is not None else None
    if depth > 32:  # self-referencing or absurdly deep values
        return "[truncated]"
    if lkey is not None and lkey not in ALLOW_KEYS and _DENY_RE.fullmatch(lkey):
        return value if value is None or isinstance(value, bool) else "[redacted]"
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, int):
        return value if abs(value) < 10**12 else _scrub(str(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            new = _scrub(skey := str(k))
            new = f"{new}#{len(out)}" if new != skey and new in out else new  # "[id]" twice
            out[new] = _clean(skey, v, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(None, v, depth + 1) for v in value]
    hook = getattr(value, "__structlog__", None)
    return _clean(key, hook() if callable(hook) else str(value), depth + 1)


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that remembers the name passed to :func:`get_logger`."""
    def __init__(self, file: IO[str], name: str | None) -> None:
        super().__init__(file)  # type: ignore[arg-type]
        self.name = name


def _add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    if name := getattr(logger, "name", None):
        event_dict.setdefault("logger", name)
    return event_dict


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor scrubbing personal data from ``event_dict``; last before rendering."""
    out: EventDict = _clean(None, event_dict)
    if isinstance(rid := event_dict.get("request_id"), str) and _UUID_RE.fullmatch(rid):
        out["request_id"] = rid  # random hex from the gateway: a digit run here is not personal
    return out


def _exception_fields(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Turn ``exc_info`` into ``exc_type`` and ``exc_msg`` (and ``exception`` only if enabled)."""
    info = event_dict.pop("exc_info", None)
    info = sys.exc_info()[1] if info is True else info[1] if isinstance(info, tuple) else info
    if not isinstance(info, BaseException):
        return event_dict
    kind, module = type(info).__qualname__, type(info).__module__
    event_dict["exc_type"] = kind if module == "builtins" else f"{module}.{kind}"
    try:
        event_dict["exc_msg"] = str(info)[:500]
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        event_dict["exc_msg"] = "[unprintable]"
    if os.environ.get("PGW_LOG_TRACEBACKS") == "1":
        event_dict["exception"] = "".join(traceback.format_exception(info))
    return event_dict


def configure_logging(level: str = "info", *, stream: IO[str] | None = None,
                      service: str = "gateway") -> None:
    """Send structlog and standard-library logging to ``stream`` as scrubbed JSON lines.

    ``stream`` defaults to ``sys.stderr`` as it is at call time. Idempotent: a second call
    replaces the first configuration (and its stdlib handler) rather than adding to it.
    """
    stream = sys.stderr if stream is None else stream
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if not isinstance(numeric, int) or level.upper() in ("NOTSET", "WARN", "FATAL"):
        raise ValueError(f"log level: got {level!r}, want debug, info, warning, error or critical")

    shared, renderer = _configure_structlog(numeric, stream, service)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def _configure_structlog(numeric: int, stream: IO[str] | None,
                         service: str) -> tuple[list[Processor], Processor]:
    """structlog's half of :func:`configure_logging` (``stream`` None: ``sys.stderr`` as it
    is at each line); returns the shared processors and the renderer for stdlib records."""
    def add_service(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_service, _exception_fields,
    ]
    renderer = structlog.processors.JSONRenderer(serializer=json.dumps, ensure_ascii=False)
    structlog.configure(
        processors=[_add_logger_name, *shared, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: _NamedPrintLogger(stream or sys.stderr,
                                                       args[0] if args else None),
        cache_logger_on_first_use=False,
    )
    return shared, renderer


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger that adds ``logger=name`` to its lines."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))


def bind_request_id(rid: str) -> Mapping[str, Token[Any]]:
    """Bind ``request_id`` to every line logged in this context (task or thread).

    ``rid`` must be made by the gateway, never taken from a client: a top-level UUID (hex or
    canonical) is logged verbatim, anything else is scrubbed like any string. Pass the returned
    tokens to ``structlog.contextvars.reset_contextvars(**tokens)`` when the request ends:
    thread-pool servers reuse one context across requests.
    """
    return structlog.contextvars.bind_contextvars(request_id=rid)


def default_logging() -> None:
    """pgw's logging before :func:`configure_logging` runs (pgw embedded as a library, a
    test): scrubbed JSON lines on ``sys.stderr``, info and above. Unconfigured, structlog
    would print every level to stdout with nothing scrubbed. Only structlog is set: the
    application's standard-library logging is left alone."""
    _configure_structlog(logging.INFO, None, "pgw")


if not structlog.is_configured():
    default_logging()
