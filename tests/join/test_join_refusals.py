"""Refusals: each is a clean status (never a stack trace) and, past authentication, audited."""

from __future__ import annotations

import grpc
import pytest
from pgw_join_support import HPF, JOIN_LIMIT, fresh_ids, join, sample


def refused(run, coro) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        run(coro)
    return info.value


def last_join(stack):
    entries = [e for e in stack.audit() if e.kind == "join"]
    assert entries, "no join entry in the audit log"
    return entries[-1]


def test_outside_purpose_is_refused_and_audited(stack, run, active, people) -> None:
    items, _ = sample(active, people, 20, 0.5, seed=1)
    err = refused(run, join(stack.address, stack.token(HPF), "ecdh-psi", "membership", items,
                            purpose="loan-eligibility"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    entry = last_join(stack)
    assert (entry.decision, entry.purpose) == ("deny", "loan-eligibility")
    assert "grants no private join" in entry.reason


def test_unknown_purpose_is_invalid_argument(stack, run) -> None:
    err = refused(run, join(stack.address, stack.token(HPF), "ecdh-psi", "membership",
                            fresh_ids(3, 1), purpose="curiosity"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_output_not_granted_for_mode_is_refused_and_audited(stack, run) -> None:
    err = refused(run, join(stack.address, stack.token(HPF), "keyed-hash", "intersection-sum",
                            fresh_ids(12, 2)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    entry = last_join(stack)
    assert entry.decision == "deny" and "needs mode ecdh-psi" in entry.reason


def test_other_org_is_refused_and_audited(stack, run) -> None:
    err = refused(run, join(stack.address, stack.token("housing-bureau"), "ecdh-psi",
                            "cardinality", fresh_ids(5, 3)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert last_join(stack).requester_org == "housing-bureau"


def test_below_min_k_is_failed_precondition_and_audited(stack, run, active) -> None:
    items = sorted(active)[:4] + fresh_ids(30, 4)
    err = refused(run, join(stack.address, stack.token(HPF), "ecdh-psi", "intersection-sum",
                            items))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "at least 10" in err.details()
    entry = last_join(stack)
    assert entry.decision == "deny" and "4 matches" in entry.reason
    assert entry.released == ()


def test_more_items_than_the_agreement_allows_is_refused(stack, run) -> None:
    err = refused(run, join(stack.address, stack.token(HPF), "keyed-hash", "cardinality",
                            fresh_ids(JOIN_LIMIT + 1, 5)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "max_subjects_per_request" in last_join(stack).reason


def test_no_token_is_unauthenticated(stack, run) -> None:
    err = refused(run, join(stack.address, "not-a-jwt", "ecdh-psi", "membership",
                            fresh_ids(2, 6)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_bad_id_names_the_position_never_the_id(stack, run) -> None:
    bad = "320402199001011230"  # wrong check character
    with pytest.raises(ValueError) as info:
        run(join(stack.address, stack.token(HPF), "ecdh-psi", "membership",
                 [*fresh_ids(2, 7), bad]))
    assert "items[2]" in str(info.value) and bad not in str(info.value)


def test_allowed_jobs_are_audited_with_sizes_never_items(stack, run, active, people) -> None:
    items, truth = sample(active, people, 60, 0.5, seed=8)
    result = run(join(stack.address, stack.token(HPF), "ecdh-psi", "cardinality", items))
    entry = last_join(stack)
    assert entry.decision == "allow"
    assert f"requester set 60, partner set {len(active)}, {len(truth)} matches" in entry.reason
    assert ("social-security", "join", "ecdh-psi cardinality") in entry.released
    assert result.receipt.leaf_index >= 0
    text = entry.encode().decode()
    assert not any(i in text for i in items)
