"""Logs leak nothing: a run of allowed, refused, invalid, unauthenticated and tampered calls
through real servers, with every log line captured, holds no subject id, name or raw value."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import structlog
from pgw_it_harness import LOAN_SS, RawData, Stack, code_of

from connectors.sdk._server import ConnectorService
from gateway.logs import configure_logging, default_logging
from gateway.pb.pgw.v1 import common_pb2, connector_pb2


@contextmanager
def captured(level: str = "debug") -> Iterator[io.StringIO]:
    """Configure pgw logging into a StringIO and restore every global afterwards."""
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging(level, stream=out)
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        default_logging()
        root.handlers[:] = handlers
        root.setLevel(root_level)


class LeakyBank(ConnectorService):
    """Adds the real card numbers as an undeclared field (the gateway must refuse the answer)."""

    async def Fetch(self, request: connector_pb2.FetchRequest,  # noqa: N802 - gRPC name
                    context: grpc.aio.ServicerContext) -> connector_pb2.FetchResponse:
        answer = await super().Fetch(request, context)
        spec = connector_pb2.ReleaseSpec.FromString(request.signed_spec.spec)
        rows = await self.source.fetch(list(spec.subjects), ["card_number"])
        for row, raw_row in zip(answer.rows, rows, strict=True):
            if raw_row:
                row.values.add(partner="bank", field="card_number", transform="plain",
                               value=common_pb2.Value(string_value=raw_row["card_number"]))
        return answer


def secrets_of(raw: RawData, people: list[str]) -> set[str]:
    out: set[str] = set()
    for person in people:
        out |= {person, person[:17], person[6:14] + person[14:17]}
        if person in raw.rows["social-security"]:
            ss = raw.row("social-security", person)
            out |= {ss["name"], ss["employer_code"], repr(ss["contribution_base"])}
        if person in raw.rows["bank"]:
            bank = raw.row("bank", person)
            out |= {bank["card_number"], repr(bank["income_avg_12m"])}
    # very short numbers (0.0, 12) would match timestamps and ports by chance
    return {s for s in out if len(s) >= 5 or not s.replace(".", "").isdigit()}


def test_logs_hold_no_personal_data(stack: Stack, make_stack: Any, raw: RawData) -> None:
    people = raw.in_all[30:36]
    bad = [people[0][:17] + ("0" if people[0][17] != "0" else "1"), people[1][:16]]
    everything = {"social-security": [*LOAN_SS], "education": ["highest_degree"],
                  "bank": ["income_avg_12m", "outstanding_loans", "overdue_flag"]}
    with captured() as out:
        leaky = make_stack(connector_cls={"bank": LeakyBank})
        stack.query("loan-eligibility", people, everything)
        stack.query("withdrawal-review", people, {"social-security": ["name", "insured_status"]})
        code_of(lambda: stack.query("loan-eligibility", people,
                                    {"bank": ["card_number", "payroll_inflows_12m"]}))
        code_of(lambda: stack.query("loan-eligibility", [*people[:2], *bad],
                                    {"education": ["highest_degree"]}))
        code_of(lambda: stack.query("loan-eligibility", people, {"bank": ["pin"]}))
        code_of(lambda: stack.query("loan-eligibility", people, {"education": ["major"]},
                                    token="e30.e30.AAAA"))
        err = code_of(lambda: leaky.query("loan-eligibility", people,
                                          {"bank": ["income_avg_12m"]}))
        assert err.code() == grpc.StatusCode.INTERNAL
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {line.get("event") for line in lines}
    # the capture really saw the servers: successes, refusals and the connector's answers
    assert {"rpc_ok", "rpc_refused"} <= events, events
    assert any(line.get("code") == "UNAUTHENTICATED" for line in lines)
    assert any(line.get("code") == "INTERNAL" for line in lines)
    for secret in sorted(secrets_of(raw, people) | set(bad)):
        assert secret not in text, f"log leaks {secret!r}"
