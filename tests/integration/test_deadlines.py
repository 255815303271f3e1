"""Deadlines: a partner whose data source hangs cannot hold a requester or leak a partial answer.

The double wraps the real bank ``DataSource`` (through the product's ``open_source`` seam) and
sleeps instead of answering; the connector server, the gateway and gRPC are all real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import grpc
from pgw_it_harness import LOAN_SS, RawData, Stack, code_of, metadata, selections_of

from connectors.sdk import DataSource, Row
from gateway.pb.pgw.v1 import gateway_pb2


class HangingSource(DataSource):
    """Delegates everything but ``fetch``, which never answers (until cancelled)."""

    calls = 0
    cancelled = 0

    def __init__(self, inner: DataSource) -> None:
        self.inner = inner
        self.schema = inner.schema

    async def fetch(self, subjects: Sequence[str], fields: Sequence[str]) -> list[Row | None]:
        type(self).calls += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            type(self).cancelled += 1
            raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


def wait_for_entries(stack: Stack, before: int, count: int, within: float = 3.0) -> list[Any]:
    """The entries after ``before``, once ``count`` of them are there (audits of cancelled
    calls finish after the requester has already seen the error)."""
    deadline = time.monotonic() + within
    while True:
        entries = stack.audit()[before:]
        if len(entries) >= count or time.monotonic() > deadline:
            time.sleep(0.2)   # and no second entry trails behind
            return stack.audit()[before:]
        time.sleep(0.02)


def hanging_class() -> type[HangingSource]:
    return type("Hanging", (HangingSource,), {"calls": 0, "cancelled": 0})


def test_client_deadline_ends_the_call_quickly(make_stack: Any, raw: RawData) -> None:
    source = hanging_class()
    stack: Stack = make_stack(source_wrap={"bank": source})
    ids = raw.in_all[:3]
    before = len(stack.audit())
    started = time.monotonic()
    err = code_of(lambda: stack.query("loan-eligibility", ids,
                                      {"social-security": LOAN_SS, "bank": ["income_avg_12m"]},
                                      timeout=1.0))
    elapsed = time.monotonic() - started
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.5, elapsed
    assert source.calls == 1
    # nothing was released, and the dispatch is on the log once, as an error
    entries = wait_for_entries(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    assert source.cancelled == 1   # the hanging read was abandoned, not left running


def test_gateway_timeout_answers_deadline_exceeded_and_audits_an_error(make_stack: Any,
                                                                       raw: RawData) -> None:
    """No client deadline: the gateway's own request_timeout_s bounds the partner call."""
    source = hanging_class()
    stack: Stack = make_stack(source_wrap={"bank": source}, request_timeout_s=1.0)
    ids = raw.in_all[:3]
    before = len(stack.audit())
    started = time.monotonic()
    err = code_of(lambda: stack.query("loan-eligibility", ids,
                                      {"education": ["highest_degree"],
                                       "bank": ["income_avg_12m"]}, timeout=30.0))
    elapsed = time.monotonic() - started
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.details()
    assert 0.9 < elapsed < 3.0, elapsed
    for person in ids:   # the fast partner's answer was not released either
        assert raw.row("education", person)["highest_degree"] not in err.details()
    entries = stack.audit()[before:]
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    assert "bank" in entries[0].reason or "deadline" in entries[0].reason.lower()


def test_other_partners_still_answer_while_one_hangs(make_stack: Any, raw: RawData) -> None:
    stack: Stack = make_stack(source_wrap={"bank": hanging_class()})
    response = stack.query("loan-eligibility", raw.in_all[:2], {"education": ["highest_degree"]},
                           timeout=5.0)
    assert len(response.results) == 2


def test_a_dispatched_call_is_audited_even_if_the_client_cancels(make_stack: Any,
                                                                 raw: RawData) -> None:
    source = hanging_class()
    stack: Stack = make_stack(source_wrap={"bank": source})
    before = len(stack.audit())
    request = gateway_pb2.QueryRequest(
        purpose="loan-eligibility", subjects=raw.in_all[:2],
        selections=selections_of({"social-security": LOAN_SS, "bank": ["income_avg_12m"]}))
    future = stack.stub.Query.future(request, metadata=metadata(stack.token()), timeout=30)
    deadline = time.monotonic() + 5
    while source.calls < 1 and time.monotonic() < deadline:   # the specs went out
        time.sleep(0.02)
    assert source.calls == 1
    assert future.cancel()
    entries = wait_for_entries(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    assert source.cancelled == 1   # the partner's hanging read was stopped as well
