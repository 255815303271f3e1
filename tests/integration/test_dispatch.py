"""Dispatch to the partners: their own agreement copies, their outages, limits and concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from pgw_it_harness import LOAN_SS, RawData, Stack, code_of, metadata, selections_of

from gateway.pb.pgw.v1 import gateway_pb2

LOAN = {"social-security": LOAN_SS, "education": ["highest_degree"]}


def partner_copy(base: Path, where: Path, edit: str) -> Path:
    """A partner's own policy copy: the shipped one with ``hpf-loan-ss`` narrowed or removed."""
    import shutil

    shutil.copytree(base, where)
    path = where / "agreements" / "hpf-loan-ss.yaml"
    if edit == "removed":
        path.unlink()
    else:  # the partner never approved employer pseudonyms: a narrower agreement, other hash
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("  employer_code: {transform: pseudonym}\n", ""),
                        encoding="utf-8")
    return where


@pytest.mark.parametrize("edit", ["narrowed", "removed"])
def test_partner_copy_of_the_agreement_wins(make_stack: Any, base_cfg: Any, raw: RawData,
                                            tmp_path: Path, edit: str) -> None:
    """Defence in depth: the gateway's copy grants it, the partner's own copy does not."""
    own = partner_copy(base_cfg.policies, tmp_path / "ss-policies", edit)
    stack: Stack = make_stack(partner_policies={"social-security": own})
    ids = raw.in_all[:3]
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", ids, LOAN))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, (err.code(), err.details())
    assert "social-security" in err.details()
    for person in ids:
        assert raw.row("education", person)["highest_degree"] not in err.details()
    entries = stack.audit()[before:]
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    # the education part of the same stack is unaffected
    assert stack.query("loan-eligibility", ids, {"education": ["highest_degree"]}).results


def test_a_partner_going_down_is_unavailable_and_audited(make_stack: Any, loop: Any,
                                                          raw: RawData) -> None:
    stack: Stack = make_stack()
    ids = raw.in_all[:2]
    assert stack.query("loan-eligibility", ids, {"bank": ["income_avg_12m"]}).results
    loop.run(stack.partners["bank"].stop(0))
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", ids,
                                      {"education": ["highest_degree"],
                                       "bank": ["income_avg_12m"]}))
    assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
    entries = stack.audit()[before:]
    assert [(e.decision, e.released) for e in entries] == [("error", ())]


def test_a_partner_down_from_the_start_is_unavailable(make_stack: Any, loop: Any,
                                                      raw: RawData) -> None:
    stack: Stack = make_stack()
    loop.run(stack.partners["bank"].stop(0))
    err = code_of(lambda: stack.query("loan-eligibility", raw.in_all[:2],
                                      {"bank": ["income_avg_12m"]}))
    assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())


def test_concurrent_queries_each_get_their_own_entry(stack: Stack, raw: RawData) -> None:
    before = len(stack.audit())
    futures = [
        stack.stub.Query.future(
            gateway_pb2.QueryRequest(purpose="loan-eligibility", subjects=[person],
                                     selections=selections_of(LOAN)),
            metadata=metadata(stack.token()), timeout=20)
        for person in raw.in_all[40:60]]
    responses = [f.result() for f in futures]
    entries = stack.audit()[before:]
    assert len(entries) == len(responses) == 20
    assert sorted(e.request_id for e in entries) == sorted(r.request_id for r in responses)
    assert sorted(r.receipt.leaf_index for r in responses) == list(range(before, before + 20))
    assert {e.decision for e in entries} == {"allow"}


