"""Bad input is INVALID_ARGUMENT naming the offending field (google.rpc.BadRequest).

Values are never echoed: a bad subject id is described, not quoted, in the message and in
the violation descriptions.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pgw_it_harness import RawData, Selections, Stack, code_of

from gateway.status import bad_request_fields

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_char(first17: str) -> str:
    """GB 11643-1999 check character, written independently of the product."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def with_check(first17: str) -> str:
    return first17 + check_char(first17)


def descriptions(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        if detail.Unpack(br):
            out.extend(v.description for v in br.field_violations)
    return out


def invalid(stack: Stack, purpose: str, subjects: Sequence[str],
            selections: Selections) -> grpc.RpcError:
    before = len(stack.audit())
    err = code_of(lambda: stack.query(purpose, subjects, selections))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert len(stack.audit()) == before  # refused before any decision
    return err


EDU = {"education": ["highest_degree"]}


def test_unknown_purpose_names_the_purpose(stack: Stack, raw: RawData) -> None:
    err = invalid(stack, "marketing", raw.in_all[:1], EDU)
    assert bad_request_fields(err) == ["purpose"]
    err = invalid(stack, "", raw.in_all[:1], EDU)
    assert bad_request_fields(err) == ["purpose"]


def test_unknown_partner_names_the_selection(stack: Stack, raw: RawData) -> None:
    err = invalid(stack, "loan-eligibility", raw.in_all[:1],
                  {"education": ["highest_degree"], "real-estate-registry": ["owner"]})
    assert bad_request_fields(err) == ["selections[1].partner"]


def test_unknown_field_names_its_path(stack: Stack, raw: RawData) -> None:
    err = invalid(stack, "loan-eligibility", raw.in_all[:1],
                  {"education": ["highest_degree", "shoe_size"],
                   "bank": ["income", "overdue_flag", "pin"]})
    assert bad_request_fields(err) == ["selections[0].fields[1]", "selections[1].fields[0]",
                                       "selections[1].fields[2]"]


def test_empty_and_repeated_selections(stack: Stack, raw: RawData) -> None:
    err = invalid(stack, "loan-eligibility", raw.in_all[:1], {})
    assert bad_request_fields(err) == ["selections"]
    err = invalid(stack, "loan-eligibility", raw.in_all[:1], {"education": []})
    assert bad_request_fields(err) == ["selections[0].fields"]
    err = invalid(stack, "loan-eligibility", raw.in_all[:1],
                  {"education": ["highest_degree", "highest_degree"]})
    assert bad_request_fields(err) == ["selections[0].fields"]


def test_malformed_subject_ids_are_named_by_position_never_quoted(stack: Stack,
                                                                  raw: RawData) -> None:
    good = raw.in_all[0]
    bad_checksum = good[:17] + ("0" if good[17] != "0" else "1")
    feb_30 = with_check("32041119900230123")
    future = with_check("32041120990101123")
    short = good[:17]
    long = good + "7"
    letters = "3204111990O1011234"[:17] + "5"   # letter O inside the digits
    bad_check_char = good[:17] + "Y"
    subjects = [good, bad_checksum, feb_30, short, letters, future, long, bad_check_char]
    err = invalid(stack, "loan-eligibility", subjects, EDU)
    assert bad_request_fields(err) == [f"subjects[{i}]" for i in range(1, len(subjects))]
    texts = [err.details(), *descriptions(err)]
    for text in texts:
        for sid in subjects:
            assert sid not in text
            assert sid[:17] not in text   # not even the body of the id
    described = " ".join(descriptions(err))
    for what in ("checksum", "date", "length", "position"):
        assert what in described


def test_subject_list_problems(stack: Stack, raw: RawData) -> None:
    err = invalid(stack, "loan-eligibility", [], EDU)
    assert bad_request_fields(err) == ["subjects"]
    err = invalid(stack, "loan-eligibility", [raw.in_all[0], raw.in_all[0]], EDU)
    assert bad_request_fields(err) == ["subjects"]
    err = invalid(stack, "loan-eligibility", raw.ordered[:1001], EDU)
    assert bad_request_fields(err) == ["subjects"]


def test_lowercase_x_check_character_is_accepted(stack: Stack, raw: RawData) -> None:
    with_x = next((i for i in raw.in_all if i.endswith("X")), None)
    if with_x is None:
        pytest.skip("no id with an X check character in the synthetic data")
    response = stack.query("loan-eligibility", [with_x.lower()], EDU)
    assert response.results[0].values[0].value.string_value == \
        raw.row("education", with_x)["highest_degree"]


def test_all_problems_of_a_request_are_reported_at_once(stack: Stack, raw: RawData) -> None:
    bad = raw.in_all[0][:17]
    err = invalid(stack, "marketing", [bad], {"education": ["shoe_size"]})
    assert sorted(bad_request_fields(err)) == ["purpose", "selections[0].fields[0]",
                                               "subjects[0]"]


def test_explain_validates_purpose_and_fields(stack: Stack) -> None:
    err = code_of(lambda: stack.explain("marketing", {"bank": ["pin"]}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_request_fields(err)) == ["purpose", "selections[0].fields[0]"]
