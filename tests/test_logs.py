"""Tests for gateway.logs: JSON lines, context binding, and scrubbing of personal data."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from gateway import logs

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def id_check(first17: str) -> str:
    """GB 11643-1999 check character, written independently of the module under test."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def make_id(region: int, born: dt.date, seq: int) -> str:
    body = f"{region:06d}{born:%Y%m%d}{seq:03d}"
    return body + id_check(body)


def make_uscc(first17: str) -> str:
    """GB 32100-2015 code with a valid check character."""
    total = sum(USCC_ALPHABET.index(c) * 3**i % 31 for i, c in enumerate(first17))
    return first17 + USCC_ALPHABET[(31 - total % 31) % 31]


PID = make_id(110105, dt.date(1949, 12, 31), 2)  # 11010519491231002X
PID_LOWER = PID.lower()
PID_DIGIT = make_id(320402, dt.date(1990, 3, 7), 457)
USCC = make_uscc("91320400MA1MXR4K2")
USCC_BAD = USCC[:17] + ("0" if USCC[17] != "0" else "1")  # looks like one, fails the check
CARD = "6222021234567890123"


@contextmanager
def captured(level: str = "debug", service: str = "gateway") -> Iterator[io.StringIO]:
    """Configure logging into a StringIO and restore every global afterwards."""
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    out = io.StringIO()
    logs.configure_logging(level, stream=out, service=service)
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        logs.default_logging()
        root.handlers[:] = handlers
        root.setLevel(root_level)


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    with captured() as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_test_helpers_make_known_valid_identifiers() -> None:
    assert PID == "11010519491231002X"
    assert PID_LOWER.endswith("x")
    assert len(USCC) == 18 and USCC[-1] in USCC_ALPHABET


def test_person_ids_are_redacted_everywhere(out: io.StringIO) -> None:
    log = logs.get_logger("t")
    log.info(f"lookup for {PID_LOWER} done", detail={"who": {"pid": PID}}, batch=["x", PID_DIGIT])
    log.info("keyed", by_person={PID_DIGIT: "found"}, as_int=int(PID_DIGIT))
    raw = out.getvalue()
    for secret in (PID, PID_LOWER, PID_DIGIT, PID_DIGIT[:17]):
        assert secret not in raw
    first, second = lines(out)
    assert first["event"] == "lookup for [id] done"
    assert first["detail"] == {"who": {"pid": "[id]"}}
    assert first["batch"] == ["x", "[id]"]
    assert second["by_person"] == {"[id]": "found"}
    assert second["as_int"] == "[id]"


def test_id_embedded_in_text_without_separators(out: io.StringIO) -> None:
    logs.get_logger("t").info(f"身份证{PID}号, ref:A{PID_DIGIT}B")
    assert lines(out)[0]["event"] == "身份证[id]号, ref:A[id]B"


def test_names_incomes_cards_and_credit_codes_are_redacted(out: io.StringIO) -> None:
    logs.get_logger("t").info(
        f"paid from card {CARD} yesterday, also 6222 0212 3456 7890",
        name="张三",
        income_avg_12m=8123.45,
        employer=USCC,
        employer_bad_check=USCC_BAD,
        contribution_base=6000,
        Payroll_Total=[1, 2],
        subjects=[PID],
        salary=True,
        value=None,
    )
    raw = out.getvalue()
    for secret in ("张三", "8123.45", USCC, CARD, "6222 0212", USCC_BAD, "6000"):
        assert secret not in raw
    (line,) = lines(out)
    assert line["event"] == "paid from card [card] yesterday, also [card]"
    assert line["name"] == line["income_avg_12m"] == line["contribution_base"] == "[redacted]"
    assert line["Payroll_Total"] == line["subjects"] == "[redacted]"
    assert line["employer"] == line["employer_bad_check"] == "[code]"
    assert line["salary"] is True and line["value"] is None


def test_allow_listed_keys_pass_through(out: io.StringIO) -> None:
    allowed = {
        "status": "OK", "code": "INVALID_ARGUMENT", "method": "/pgw.v1.Gateway/Query",
        "partner": "social-security", "purpose": "loan-eligibility", "agreement": "hpf-ss-001",
        "duration_ms": 12.5, "count": 3, "subject_count": 2,
    }
    logs.get_logger("t").info("done", **allowed)
    line = lines(out)[0]
    assert {k: line[k] for k in allowed} == allowed
    assert line["event"] == "done" and line["level"] == "info" and line["service"] == "gateway"


def test_timestamp_is_iso_utc(out: io.StringIO) -> None:
    logs.get_logger("t").warning("tick")
    stamp = dt.datetime.fromisoformat(lines(out)[0]["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)


def test_request_id_on_every_line_until_reset(out: io.StringIO) -> None:
    log = logs.get_logger("t")
    tokens = logs.bind_request_id("req-7f3a")
    log.info("one")
    log.warning("two", partner="bank")
    logging.getLogger("grpc.server").error("from stdlib")
    structlog.contextvars.reset_contextvars(**tokens)
    log.info("after")
    *during, after = lines(out)
    assert [line["request_id"] for line in during] == ["req-7f3a"] * 3
    assert "request_id" not in after


@given(rid=st.uuids(), canonical=st.booleans())
def test_uuid_request_ids_survive_scrubbing(rid: Any, canonical: bool) -> None:
    text = str(rid) if canonical else rid.hex
    with captured() as stream:
        logs.bind_request_id(text)
        logs.get_logger("t").info("x")
    assert lines(stream)[0]["request_id"] == text


def test_digit_heavy_hex_request_id_is_kept_but_not_elsewhere(out: io.StringIO) -> None:
    rid = "6222021234567890123abcdef0123456"
    logs.bind_request_id(rid)
    logs.get_logger("t").info("x", nested={"request_id": rid})
    line = lines(out)[0]
    assert line["request_id"] == rid
    assert line["nested"] == {"request_id": "[card]abcdef0123456"}


def test_allow_listed_keys_are_still_scrubbed_for_ids(out: io.StringIO) -> None:
    logs.bind_request_id(PID)
    logs.get_logger("t").info("x", code=USCC, partner={"name": "王五"})
    line = lines(out)[0]
    assert (line["request_id"], line["code"], line["partner"]) == ("[id]", "[code]",
                                                                  {"name": "[redacted]"})


def test_stdlib_records_are_json_and_scrubbed(out: io.StringIO) -> None:
    logging.getLogger("grpc.server").warning("bad subject %s", PID)
    (line,) = lines(out)
    assert line["event"] == "bad subject [id]"
    assert line["logger"] == "grpc.server" and line["level"] == "warning"
    assert PID not in out.getvalue()


def test_exceptions_log_type_and_scrubbed_message_only(out: io.StringIO) -> None:
    try:
        raise KeyError(PID)
    except KeyError:
        logs.get_logger("t").exception("lookup failed")
    (line,) = lines(out)
    assert line["exc_type"] == "KeyError"
    assert line["exc_msg"] == "'[id]'"
    assert "exception" not in line and "Traceback" not in out.getvalue()
    assert PID not in out.getvalue()


def test_stdlib_exceptions_drop_the_traceback(out: io.StringIO) -> None:
    try:
        raise RuntimeError(f"card {CARD}")
    except RuntimeError:
        logging.getLogger("grpc.server").exception("handler failed")
    (line,) = lines(out)
    assert (line["exc_type"], line["exc_msg"]) == ("RuntimeError", "card [card]")
    assert "Traceback" not in out.getvalue() and CARD not in out.getvalue()


def test_self_referencing_values_do_not_break_logging(out: io.StringIO) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    logs.get_logger("t").info("x", loop=loop)
    assert "[truncated]" in out.getvalue()


def test_tracebacks_only_when_enabled_and_still_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGW_LOG_TRACEBACKS", "1")
    with captured() as stream:
        try:
            raise ValueError(f"no row for {PID}")
        except ValueError as exc:
            logs.get_logger("t").error("failed", exc_info=exc)
    (line,) = lines(stream)
    assert "Traceback" in line["exception"] and "[id]" in line["exception"]
    assert PID not in stream.getvalue()


def test_configure_is_idempotent_and_filters_levels() -> None:
    with captured() as first:
        with captured(level="warning", service="connector-bank") as second:
            log = logs.get_logger("t")
            log.info("dropped")
            log.warning("kept")
            logging.getLogger("x").info("dropped too")
            marked = [h for h in logging.getLogger().handlers if isinstance(h.formatter,
                      structlog.stdlib.ProcessorFormatter)]
            assert len(marked) == 1
        assert first.getvalue() == ""
        assert [(x["event"], x["service"]) for x in lines(second)] == [("kept", "connector-bank")]


def test_bad_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="got 'loud'"):
        logs.configure_logging("loud")


def test_redact_processor_alone() -> None:
    event = {"event": f"x {PID}", "Name": "李四", "amount": 0, "ok": False, "n": 7}
    assert logs.redact(None, "info", event) == {
        "event": "x [id]", "Name": "[redacted]", "amount": "[redacted]", "ok": False, "n": 7,
    }


def test_public_surface() -> None:
    assert logs.__all__ == sorted(logs.__all__)
    assert set(logs.__all__) == {
        "ALLOW_KEYS", "DENY_KEYS", "bind_request_id", "configure_logging", "default_logging",
        "get_logger", "redact",
    }


valid_ids = st.builds(
    make_id,
    st.integers(110000, 659999),
    st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    st.integers(0, 999),
)


# Arbitrary text, plus text dense in digits, X, separators and CJK to probe the match boundaries.
noise = st.one_of(st.text(max_size=30), st.text(alphabet="0123456789Xx -:A张", max_size=30))


@given(pid=valid_ids, before=noise, after=noise, lower=st.booleans())
def test_embedded_ids_never_survive(pid: str, before: str, after: str, lower: bool) -> None:
    pid = pid.lower() if lower else pid
    with captured() as stream:
        logs.get_logger("t").info(before + pid + after, note=[{before: after + pid}])
    raw = stream.getvalue()
    assert pid not in raw and pid.upper() not in raw
    assert pid[:17] not in raw


def test_unconfigured_pgw_logs_scrubbed_json_to_stderr_only() -> None:
    """A fresh interpreter that never calls configure_logging (a library user)."""
    code = (f"from gateway.logs import get_logger\n"
            f"log = get_logger('pgw.x')\n"
            f"log.debug('noisy', person_id={PID!r})\n"
            f"log.info('seen', note='for {PID}', count=2)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == ""
    (line,) = [json.loads(x) for x in done.stderr.splitlines()]
    assert line["event"] == "seen" and line["level"] == "info" and line["count"] == 2
    assert PID not in done.stderr and line["note"] == "for [id]"
