"""Coalesced Fetch calls through the real gateway and real connectors (``gateway._coalesce``).

Each stack runs with ``connector_max_inflight = 1`` so that one call in flight to the bank is
enough to make later specs queue. A wrapping bank ``DataSource`` (the product's ``open_source``
seam) holds the first read until the test opens a gate, and a ``ConnectorService`` subclass
records every spec that reached the connector's per-spec path and every FetchBatch, so the
tests assert on what the connector actually saw.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from pgw_it_harness import LOAN_SS, LoopThread, RawData, Stack, code_of, metadata, selections_of

from connectors.sdk import DataSource, Row
from connectors.sdk._server import ConnectorService
from gateway._coalesce import DEFAULT_MAX_INFLIGHT, MAX_BATCH, FetchLanes
from gateway.config import load_config
from gateway.errors import ConfigError, PermissionDenied
from gateway.metrics import CONNECTOR_BATCH_ITEMS
from gateway.pb.pgw.v1 import connector_pb2, gateway_pb2

BANK = {"bank": ["income_avg_12m", "overdue_flag"]}
LOAN = {"social-security": LOAN_SS, "education": ["highest_degree"], **BANK}
REFUSED = "partner bank refused the release spec"


class Probe:
    """Shared by the wrapped source and the test: what was read, a gate, a delay."""

    def __init__(self, loop: LoopThread, *, hold: int = 0, delay: float = 0.0) -> None:
        self.loop, self.hold, self.delay = loop, hold, delay
        self.reads: list[tuple[str, ...]] = []
        self.gate = asyncio.Event()

    def wrap(self, inner: DataSource) -> DataSource:
        return _Probed(inner, self)

    def open(self) -> None:
        self.loop.loop.call_soon_threadsafe(self.gate.set)


class _Probed(DataSource):
    def __init__(self, inner: DataSource, probe: Probe) -> None:
        self.inner, self.probe, self.schema = inner, probe, inner.schema

    async def fetch(self, subjects: Sequence[str], fields: Sequence[str]) -> list[Row | None]:
        self.probe.reads.append(tuple(subjects))
        if len(self.probe.reads) <= self.probe.hold:
            await self.probe.gate.wait()
        elif self.probe.delay:
            await asyncio.sleep(self.probe.delay)
        return await self.inner.fetch(subjects, fields)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Recording(ConnectorService):
    """The real connector, noting each spec it settles and each FetchBatch's size."""

    released: list[str]
    batches: list[int]
    poison: str | None = None   # a subject whose specs this double refuses

    async def _release(self, signed: connector_pb2.SignedReleaseSpec
                       ) -> connector_pb2.FetchResponse:
        spec = connector_pb2.ReleaseSpec.FromString(signed.spec)
        type(self).released.append(spec.request_id)
        if self.poison in spec.subjects:
            raise PermissionDenied("refused by the test double", reason="poison subject")
        return await super()._release(signed)

    async def FetchBatch(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        type(self).batches.append(len(request.requests))
        return await super().FetchBatch(request, context)


class OlderSdk(Recording):
    """A connector built before FetchBatch existed: the method is not there."""

    async def FetchBatch(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        type(self).batches.append(len(request.requests))
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


def recording(base: type[Recording] = Recording, **attrs: Any) -> type[Recording]:
    return type("Rec", (base,), {"released": [], "batches": [], **attrs})


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``wait(n)``: block until ``n`` specs in all have queued behind a call in flight."""
    count = [0]
    changed = threading.Condition()
    real = FetchLanes._queued

    async def counting(self: FetchLanes, *args: Any) -> Any:
        with changed:
            count[0] += 1
            changed.notify_all()
        return await real(self, *args)

    monkeypatch.setattr(FetchLanes, "_queued", counting)

    def wait(n: int) -> None:
        with changed:
            assert changed.wait_for(lambda: count[0] >= n, timeout=10), (count[0], n)

    return wait


def until(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def ask(stack: Stack, people: list[str], selections: Any = BANK, timeout: float = 30.0
        ) -> grpc.Future:
    request = gateway_pb2.QueryRequest(purpose="loan-eligibility", subjects=people,
                                       selections=selections_of(selections))
    return stack.stub.Query.future(request, metadata=metadata(stack.token()), timeout=timeout)


def held(make_stack: Any, loop: LoopThread, rec: type[Recording], **kw: Any
         ) -> tuple[Stack, Probe]:
    """A stack whose first bank read waits for ``probe.open()``."""
    probe = Probe(loop, hold=1, delay=kw.pop("delay", 0.0))
    stack = make_stack(source_wrap={"bank": probe.wrap}, connector_cls={"bank": rec},
                       connector_max_inflight=1, **kw)
    return stack, probe


def test_concurrent_queries_get_the_answers_lone_calls_give(make_stack: Any, loop: LoopThread,
                                                           raw: RawData) -> None:
    rec = recording()
    probe = Probe(loop, delay=0.05)   # each read takes a while: specs pile up behind it
    stack: Stack = make_stack(source_wrap={"bank": probe.wrap}, connector_cls={"bank": rec},
                              connector_max_inflight=1)
    people = [[p] for p in raw.in_all[100:130]] + [raw.in_all[130:133]]
    alone = [stack.query("loan-eligibility", p, LOAN) for p in people]   # one by one: Fetch
    assert rec.batches == []
    before, calls = len(stack.audit()), CONNECTOR_BATCH_ITEMS.count(partner="bank")
    together = [f.result() for f in [ask(stack, p, LOAN) for p in people]]
    assert rec.batches and max(rec.batches) > 1, rec.batches   # they did share calls
    assert CONNECTOR_BATCH_ITEMS.count(partner="bank") - calls == len(rec.batches) + \
        len(people) - sum(rec.batches) < len(people)
    for a, t in zip(alone, together, strict=True):
        assert list(t.results) == list(a.results)
        assert t.request_id != a.request_id
    entries = stack.audit()[before:]
    assert sorted(e.request_id for e in entries) == sorted(t.request_id for t in together)
    assert {e.decision for e in entries} == {"allow"}
    # each spec reached the connector once, alone or in a batch
    assert sorted(rec.released) == sorted(r.request_id for r in [*alone, *together])


def test_an_item_refused_in_a_batch_fails_only_its_own_query(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    poison = raw.in_all[140]
    rec = recording(poison=poison)
    stack, probe = held(make_stack, loop, rec)
    first = ask(stack, raw.in_all[141:142])
    until(lambda: len(probe.reads) == 1)
    bad, good = ask(stack, [poison]), ask(stack, raw.in_all[142:144])
    queued(2)
    probe.open()
    assert first.result().results
    assert len(good.result().results) == 2
    err = code_of(bad.result)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, (err.code(), err.details())
    assert err.details() == REFUSED          # what a refused lone Fetch gives (test_upstream)
    assert poison not in (err.details() or "")
    assert rec.batches == [2]


def test_a_caller_cancelled_while_queued_is_never_sent(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    rec = recording()
    stack, probe = held(make_stack, loop, rec)
    before = len(stack.audit())
    first = ask(stack, raw.in_all[150:151])
    until(lambda: len(probe.reads) == 1)
    gone = ask(stack, raw.in_all[151:152])
    queued(1)
    assert gone.cancel()
    until(lambda: len(stack.audit()) > before)   # the cancelled query's error entry
    probe.open()
    answer = first.result()
    later = stack.query("loan-eligibility", raw.in_all[152:153], BANK)   # the lane still works
    assert rec.released == [answer.request_id, later.request_id]
    assert probe.reads == [tuple(raw.in_all[150:151]), tuple(raw.in_all[152:153])]
    assert rec.batches == []
    entries = {e.request_id: e.decision for e in stack.audit()[before:]}
    assert len(entries) == 3
    assert sorted(entries.values()) == ["allow", "allow", "error"]


def test_a_connector_without_fetch_batch_gets_plain_fetch_calls(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    rec = recording(OlderSdk)
    stack, probe = held(make_stack, loop, rec)
    first = ask(stack, raw.in_all[160:161])
    until(lambda: len(probe.reads) == 1)
    waiting = [ask(stack, [p]) for p in raw.in_all[161:164]]
    queued(3)
    probe.open()
    answers = [f.result() for f in [first, *waiting]]
    assert rec.batches == [3]     # tried once, then each of the three as a Fetch
    burst = [f.result() for f in [ask(stack, [p]) for p in raw.in_all[164:170]]]
    assert rec.batches == [3]     # and never again
    assert sorted(rec.released) == sorted(a.request_id for a in [*answers, *burst])
    assert all(len(a.results) == 1 and a.results[0].values for a in [*answers, *burst])


def test_a_queued_spec_past_the_gateway_timeout_fails_as_a_lone_fetch_does(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    rec = recording()
    stack, probe = held(make_stack, loop, rec, request_timeout_s=1.0)
    probe.hold = 2                # the queued spec's read (if it gets one) hangs as well
    first = ask(stack, raw.in_all[170:171])
    until(lambda: len(probe.reads) == 1)
    started = time.monotonic()
    waiting = ask(stack, raw.in_all[171:172])
    queued(1)
    lone, queued_err = code_of(first.result), code_of(waiting.result)
    assert time.monotonic() - started < 2.5
    for err in (lone, queued_err):
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (err.code(), err.details())
    assert queued_err.details() == lone.details() == \
        "partner bank did not answer before the deadline"
    probe.open()


def test_each_caller_in_a_batch_stops_at_its_own_deadline(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    rec = recording()
    stack, probe = held(make_stack, loop, rec, delay=1.5)   # reads after the first take 1.5 s
    first = ask(stack, raw.in_all[180:181])
    until(lambda: len(probe.reads) == 1)
    started = time.monotonic()
    short, patient = ask(stack, raw.in_all[181:182], timeout=1.0), ask(stack, raw.in_all[182:183])
    queued(2)
    probe.open()                  # both go out as one batch, whose reads take 1.5 s
    err = code_of(short.result)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (err.code(), err.details())
    assert time.monotonic() - started < 1.45
    assert patient.result().results   # the batch carried on for the other caller
    assert time.monotonic() - started >= 1.5
    assert first.result().results
    assert rec.batches == [2]


def test_a_full_batch_goes_out_without_waiting_for_the_call_in_flight(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None]) -> None:
    rec = recording()
    stack, probe = held(make_stack, loop, rec)
    first = ask(stack, raw.in_all[200:201])
    until(lambda: len(probe.reads) == 1)
    waiting = [ask(stack, [p]) for p in raw.in_all[201:202 + MAX_BATCH]]
    queued(MAX_BATCH + 1)
    until(lambda: rec.batches == [MAX_BATCH])   # the first call is still held
    answers = [f.result() for f in waiting[:MAX_BATCH]]
    assert not first.done() and not waiting[-1].done()   # one over the batch still waits
    probe.open()
    assert first.result().results and waiting[-1].result().results
    assert all(len(a.results) == 1 and a.results[0].values for a in answers)
    assert rec.batches == [MAX_BATCH]   # the last one went alone, once the first was answered


class Malformed(Recording):
    """Answers FetchBatch outside its contract: ``shape`` "short" (one outcome too few) or
    "empty" (outcomes with neither an answer nor an error)."""

    shape = "short"

    async def FetchBatch(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        type(self).batches.append(len(request.requests))
        n = len(request.requests) - (1 if self.shape == "short" else 0)
        return connector_pb2.FetchBatchResponse(outcomes=[connector_pb2.FetchOutcome()] * n)


@pytest.mark.parametrize("shape", ["short", "empty"])
def test_a_malformed_batch_answer_releases_nothing(
        make_stack: Any, loop: LoopThread, raw: RawData, queued: Callable[[int], None],
        shape: str) -> None:
    rec = recording(Malformed, shape=shape)
    stack, probe = held(make_stack, loop, rec)
    first = ask(stack, raw.in_all[190:191])
    until(lambda: len(probe.reads) == 1)
    before = len(stack.audit())
    waiting = [ask(stack, [p]) for p in raw.in_all[191:193]]
    queued(2)
    probe.open()
    lone = first.result().request_id
    for future in waiting:
        err = code_of(future.result)
        assert err.code() == grpc.StatusCode.INTERNAL, (err.code(), err.details())
        assert err.details() == "a partner answered outside the release spec; nothing was " \
            "released"
    assert rec.batches == [2]
    entries = [e for e in stack.audit()[before:] if e.request_id != lone]
    assert [(e.decision, e.released) for e in entries] == [("error", ())] * 2


def _config(workdir: Path, line: str) -> Path:
    path = workdir / f"pgw-inflight-{abs(hash(line))}.toml"
    path.write_text((workdir / "pgw.toml").read_text().replace("[gateway]\n",
                                                               f"[gateway]\n{line}\n", 1))
    return path


def test_max_inflight_is_configurable_and_checked(workdir: Path) -> None:
    assert load_config(workdir / "pgw.toml").connector_max_inflight == DEFAULT_MAX_INFLIGHT
    assert load_config(_config(workdir, "connector_max_inflight = 4")
                       ).connector_max_inflight == 4
    for bad, want in (("0", "got 0, want >= 1"), ('"2"', "got str, want int")):
        with pytest.raises(ConfigError, match=want):
            load_config(_config(workdir, f"connector_max_inflight = {bad}"))
