"""A connector that answers outside its signed spec is caught by the gateway.

Fault-injection doubles subclass the real ``ConnectorService`` and tamper with its real answer
(an undeclared field, a predicate turned into a string, rows for other subjects...). They are
wired in through the product's own ``start_partner``. The gateway must answer INTERNAL with the
generic ``UpstreamViolation`` message, release nothing, and audit the call as ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from pgw_it_harness import LOAN_SS, RawData, Stack, code_of

from connectors.sdk._server import ConnectorService
from gateway.pb.pgw.v1 import common_pb2, connector_pb2

GENERIC = "a partner answered outside the release spec; nothing was released"
Mutation = Callable[[ConnectorService, connector_pb2.ReleaseSpec, connector_pb2.FetchResponse],
                    Any]


def tampering(mutate: Mutation) -> type[ConnectorService]:
    """A ConnectorService whose real answers pass through ``mutate`` before leaving."""

    class Tampering(ConnectorService):
        async def Fetch(self, request: connector_pb2.FetchRequest,  # noqa: N802 - gRPC name
                        context: grpc.aio.ServicerContext) -> connector_pb2.FetchResponse:
            answer = await super().Fetch(request, context)
            spec = connector_pb2.ReleaseSpec.FromString(request.signed_spec.spec)
            result = mutate(self, spec, answer)
            if hasattr(result, "__await__"):
                await result
            return answer

    return Tampering


async def add_card_numbers(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                           answer: connector_pb2.FetchResponse) -> None:
    """A leaky bank: the real card numbers ride along as an undeclared field."""
    rows = await svc.source.fetch(list(spec.subjects), ["card_number"])
    for row, raw_row in zip(answer.rows, rows, strict=True):
        if row.found and raw_row:
            row.values.add(partner=svc.partner, field="card_number", transform="plain",
                           value=common_pb2.Value(string_value=raw_row["card_number"]))


def predicate_to_string(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                        answer: connector_pb2.FetchResponse) -> None:
    for row in answer.rows:
        for v in row.values:
            if v.transform == "predicate":
                v.value.string_value = str(v.value.bool_value)


async def raw_income_as_double(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                               answer: connector_pb2.FetchResponse) -> None:
    rows = await svc.source.fetch(list(spec.subjects), ["income_avg_12m"])
    for row, raw_row in zip(answer.rows, rows, strict=True):
        for v in row.values:
            if v.field == "income_avg_12m" and raw_row:
                v.value.double_value = raw_row["income_avg_12m"]


def relabel_transform(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                      answer: connector_pb2.FetchResponse) -> None:
    for row in answer.rows:
        for v in row.values:
            v.transform = "plain"


def foreign_subject_row(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                        answer: connector_pb2.FetchResponse) -> None:
    extra = connector_pb2.Row(subject_index=len(spec.subjects), found=True)
    extra.values.extend(answer.rows[0].values)
    answer.rows.append(extra)


def duplicate_row(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                  answer: connector_pb2.FetchResponse) -> None:
    answer.rows.append(answer.rows[0])


def drop_a_row(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
               answer: connector_pb2.FetchResponse) -> None:
    del answer.rows[-1]


def other_request_id(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                     answer: connector_pb2.FetchResponse) -> None:
    answer.request_id = "0" * 32


def other_partner_label(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                        answer: connector_pb2.FetchResponse) -> None:
    for row in answer.rows:
        for v in row.values:
            v.partner = "education"


def values_for_not_found(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                         answer: connector_pb2.FetchResponse) -> None:
    answer.rows[0].found = False


def drop_a_field(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                 answer: connector_pb2.FetchResponse) -> None:
    for row in answer.rows:
        del row.values[-1]


# partner -> (mutation, fields asked of that partner)
CASES: dict[str, tuple[str, Mutation, list[str]]] = {
    "extra-field-card-number": ("bank", add_card_numbers, ["income_avg_12m", "overdue_flag"]),
    "predicate-bool-as-string": ("social-security", predicate_to_string, LOAN_SS),
    "generalized-income-as-raw-double": ("bank", raw_income_as_double, ["income_avg_12m"]),
    "transform-relabelled": ("social-security", relabel_transform, LOAN_SS),
    "row-for-unrequested-subject": ("social-security", foreign_subject_row, LOAN_SS),
    "row-repeated": ("social-security", duplicate_row, LOAN_SS),
    "row-missing": ("social-security", drop_a_row, LOAN_SS),
    "answer-for-another-request": ("social-security", other_request_id, LOAN_SS),
    "value-labelled-another-partner": ("social-security", other_partner_label, LOAN_SS),
    "values-for-a-not-found-subject": ("social-security", values_for_not_found, LOAN_SS),
    "field-missing": ("social-security", drop_a_field, LOAN_SS),
}


def assert_caught(stack: Stack, raw: RawData, partner: str, fields: list[str]) -> None:
    ids = raw.in_all[:3]
    before = stack.audit()
    err = code_of(lambda: stack.query("loan-eligibility", ids, {partner: fields}))
    assert err.code() == grpc.StatusCode.INTERNAL, (err.code(), err.details())
    assert err.details() == GENERIC
    for person in ids:
        for secret in (person, raw.row("bank", person)["card_number"],
                       repr(raw.row("bank", person)["income_avg_12m"])):
            assert secret not in err.details()
    after = stack.audit()
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert entry.decision == "error" and entry.kind == "query"
    assert entry.released == () and entry.response_digest == ""
    assert partner in entry.reason
    assert entry.subject_count == len(ids)


@pytest.mark.parametrize("case", sorted(CASES))
def test_answer_outside_the_spec_is_caught(make_stack: Any, raw: RawData, case: str) -> None:
    partner, mutate, fields = CASES[case]
    stack = make_stack(connector_cls={partner: tampering(mutate)})
    assert_caught(stack, raw, partner, fields)


def test_the_honest_path_through_the_same_seam_passes(make_stack: Any, raw: RawData) -> None:
    """The double's plumbing alone (no tampering) is not what the gateway objects to."""
    stack = make_stack(connector_cls={"bank": tampering(lambda *_: None)})
    response = stack.query("loan-eligibility", raw.in_all[:3], {"bank": ["income_avg_12m"]})
    assert len(response.results) == 3
    assert stack.audit()[-1].decision == "allow"


def raw_employer_code_as_pseudonym(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                                   answer: connector_pb2.FetchResponse) -> Any:
    async def run() -> None:
        rows = await svc.source.fetch(list(spec.subjects), ["employer_code"])
        for row, raw_row in zip(answer.rows, rows, strict=True):
            for v in row.values:
                if v.field == "employer_code" and raw_row:
                    v.value.string_value = raw_row["employer_code"]
    return run()


def full_name_as_mask(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                      answer: connector_pb2.FetchResponse) -> Any:
    async def run() -> None:
        rows = await svc.source.fetch(list(spec.subjects), ["name"])
        for row, raw_row in zip(answer.rows, rows, strict=True):
            for v in row.values:
                if v.field == "name" and raw_row:
                    v.value.string_value = raw_row["name"]
    return run()


def raw_income_as_label(svc: ConnectorService, spec: connector_pb2.ReleaseSpec,
                        answer: connector_pb2.FetchResponse) -> Any:
    async def run() -> None:
        rows = await svc.source.fetch(list(spec.subjects), ["income_avg_12m"])
        for row, raw_row in zip(answer.rows, rows, strict=True):
            for v in row.values:
                if v.field == "income_avg_12m" and raw_row:
                    v.value.string_value = repr(raw_row["income_avg_12m"])
    return run()


# Regression: gateway/answers.py once compared only the Value oneof case, so any string
# passed for mask, generalize and pseudonym and a connector could send the raw value instead.


def test_raw_employer_code_posing_as_a_pseudonym_is_caught(make_stack: Any,
                                                           raw: RawData) -> None:
    stack = make_stack(connector_cls={
        "social-security": tampering(raw_employer_code_as_pseudonym)})
    assert_caught(stack, raw, "social-security", ["employer_code"])


def test_unmasked_name_posing_as_a_mask_is_caught(make_stack: Any, raw: RawData) -> None:
    stack = make_stack(connector_cls={"social-security": tampering(full_name_as_mask)})
    ids = raw.in_all[:3]
    before = len(stack.audit())
    err = code_of(lambda: stack.query("withdrawal-review", ids, {"social-security": ["name"]}))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert stack.audit()[before].decision == "error"


def test_raw_income_posing_as_a_band_label_is_caught(make_stack: Any, raw: RawData) -> None:
    stack = make_stack(connector_cls={"bank": tampering(raw_income_as_label)})
    assert_caught(stack, raw, "bank", ["income_avg_12m"])
