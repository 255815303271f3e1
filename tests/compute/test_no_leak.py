"""Nothing in the audit log or the logs of compute calls holds a subject id or an input value."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import structlog
from pgw_compute_harness import RawData, Stack, code_of

from gateway.logs import configure_logging, default_logging


@contextmanager
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("debug", stream=out)
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        default_logging()
        root.handlers[:] = handlers
        root.setLevel(level)


def secrets_of(raw: RawData, people: list[str]) -> set[str]:
    out: set[str] = set()
    for person in people:
        out |= {person, person[:17]}
        for partner, field in (("bank", "income_avg_12m"), ("social-security", "name"),
                               ("social-security", "contribution_base")):
            row = raw.rows[partner].get(person)
            if row is not None and row[field] is not None:
                out |= {str(row[field]), repr(row[field])}
    return {s for s in out if len(s) >= 5}


def test_compute_calls_leak_nothing(stack: Stack, raw: RawData) -> None:
    people = raw.in_all[20:26]
    before = len(stack.audit())
    with captured() as logs:
        result = stack.score(people)
        stack.aggregate("social-security", "contribution_base", "sum", "district_code", "320402")
        code_of(lambda: stack.score(people, purpose="loan-eligibility"))
        err = code_of(lambda: stack.score(people[:1] + ["110101199003070000"]))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = logs.getvalue()
    assert "Compute" in text and "Encrypt" in text  # the calls were logged at all
    entries = stack.audit()[before:]
    assert len(entries) == 4
    blob = text + "".join(e.encode().decode() for e in entries)
    # long renderings only: a 4-character "1.76" also matches a log line's duration_ms=1.76
    scores = {f"{s:.5f}" for s in result.scores} | {repr(s) for s in result.scores}
    leaked = {s for s in secrets_of(raw, people) | scores if s in blob}
    assert leaked == set()
