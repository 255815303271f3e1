"""The agreement lifecycle end to end over real gRPC servers: propose, two distinct approvals,
activation, revocation, persistence across a gateway restart, and the audit trail."""

from __future__ import annotations

from typing import Any

import grpc
from pgw_it_harness import code_of

from gateway.pb.pgw.v1 import admin_pb2
from gateway.status import bad_request_fields

NEW = """# HPF withdrawal review: bank income in bands, to check "no income" withdrawal grounds.
id: hpf-withdrawal-bank
version: 1
requester_org: hpf-changzhou
roles: [requester]
purpose: withdrawal-review
partner: bank
legal_basis: PIPL art. 13(3) and art. 6 (minimum necessary).
valid_from: 2026-01-01
valid_until: 2027-12-31
fields:
  income_avg_12m: {transform: generalize, edges: [3000, 5000, 8000]}
limits:
  max_subjects_per_request: 20
  requests_per_minute: 60
"""
WITHDRAWAL = [("bank", "income_avg_12m")]
LOAN_BANK = [("bank", "income_avg_12m"), ("bank", "outstanding_loans")]
ACTIVE, PROPOSED = admin_pb2.AGREEMENT_STATE_ACTIVE, admin_pb2.AGREEMENT_STATE_PROPOSED


def admin_entries(hub: Any) -> list[Any]:
    return [e for e in hub.stack.audit() if e.kind == "admin"]


def test_two_distinct_approvals_activate(hub: Any) -> None:
    ids = hub.subjects()
    hub.install_at_partner("bank", "hpf-withdrawal-bank", NEW)  # the partner is ready early
    rec = hub.propose(NEW)
    digest = rec.agreement.content_hash
    assert rec.state == PROPOSED and rec.proposer == "hpf-changzhou/admin-1"
    refused = code_of(lambda: hub.stack.query("withdrawal-review", ids, WITHDRAWAL))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED

    one = hub.approve(rec.proposal_id, digest, "officer-a")
    assert one.state == PROPOSED and list(one.approvers) == ["hpf-changzhou/officer-a"]
    refused = code_of(lambda: hub.stack.query("withdrawal-review", ids, WITHDRAWAL))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED

    two = hub.approve(rec.proposal_id, digest, "officer-b")
    assert two.state == ACTIVE and two.approvals_required == 2
    answer = hub.stack.query("withdrawal-review", ids, WITHDRAWAL)
    assert [a.content_hash for a in answer.agreements] == [digest]
    last = hub.stack.audit()[-1]
    assert (last.kind, last.decision) == ("query", "allow")
    assert [(a.id, a.version, a.content_hash) for a in last.agreements] == [
        ("hpf-withdrawal-bank", 1, digest)]
    steps = [(e.reason.split(":")[0], e.decision, e.role, e.agreements[0].content_hash)
             for e in admin_entries(hub)]
    assert steps == [("propose", "allow", "policy-admin", digest),
                     ("approve", "allow", "auditor", digest),
                     ("approve", "allow", "auditor", digest),
                     ("activate", "allow", "auditor", digest)]


def test_new_version_replaces_old_and_survives_restart(hub: Any) -> None:
    ids = hub.subjects()
    old = hub.stack.query("loan-eligibility", ids, LOAN_BANK).agreements[0]
    text = (hub.cfg.policies / "agreements" / "hpf-loan-bank.yaml").read_text().replace(
        "version: 1", "version: 2").replace("band: 50000", "band: 100000")
    rec = hub.propose(text)
    hub.approve(rec.proposal_id, rec.agreement.content_hash, "officer-a")
    hub.approve(rec.proposal_id, rec.agreement.content_hash, "officer-b")
    states = {(r.agreement.version, r.state) for r in hub.list("hpf-loan-bank")}
    assert states == {(1, admin_pb2.AGREEMENT_STATE_SUPERSEDED), (2, ACTIVE)}
    # The hub now signs specs under v2; the bank's connector still holds v1 and refuses.
    stale = code_of(lambda: hub.stack.query("loan-eligibility", ids, LOAN_BANK))
    assert stale.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "refused the release spec" in stale.details()
    exported = hub.admin.ExportAgreement(
        admin_pb2.ExportAgreementRequest(agreement_id="hpf-loan-bank"),
        metadata=[("authorization", f"Bearer {hub.token(['integrator'], 'bank-ops')}")])
    assert exported.agreement_yaml == text
    hub.install_at_partner("bank", "hpf-loan-bank", exported.agreement_yaml)
    hub.restart_gateway()
    answer = hub.stack.query("loan-eligibility", ids, LOAN_BANK)
    assert (answer.agreements[0].version, answer.agreements[0].content_hash) == (
        2, rec.agreement.content_hash)
    assert answer.agreements[0].content_hash != old.content_hash
    activate = [e for e in admin_entries(hub) if e.reason.startswith("activate")][0]
    assert [(a.version, a.content_hash) for a in activate.agreements] == [
        (2, rec.agreement.content_hash), (1, old.content_hash)]


def test_approval_rules(hub: Any) -> None:
    rec = hub.propose(NEW, subject="admin-2", roles=["policy-admin", "auditor"])
    digest = rec.agreement.content_hash
    cases = [
        # the proposer, although an auditor too
        (lambda: hub.approve(rec.proposal_id, digest, "admin-2", ["policy-admin", "auditor"]),
         grpc.StatusCode.PERMISSION_DENIED),
        # a policy-admin who is not an auditor
        (lambda: hub.approve(rec.proposal_id, digest, "admin-3", ["policy-admin"]),
         grpc.StatusCode.PERMISSION_DENIED),
        # a stale or different hash
        (lambda: hub.approve(rec.proposal_id, "0" * 64, "officer-a"),
         grpc.StatusCode.FAILED_PRECONDITION),
        (lambda: hub.approve("no-such-proposal", digest, "officer-a"),
         grpc.StatusCode.NOT_FOUND),
        # a requester or an auditor cannot propose
        (lambda: hub.propose(NEW.replace("version: 1", "version: 2"), "req", ["requester"]),
         grpc.StatusCode.PERMISSION_DENIED),
        (lambda: hub.propose(NEW.replace("version: 1", "version: 2"), "aud", ["auditor"]),
         grpc.StatusCode.PERMISSION_DENIED),
    ]
    for call, code in cases:
        assert code_of(call).code() == code
    hub.approve(rec.proposal_id, digest, "officer-a")
    again = code_of(lambda: hub.approve(rec.proposal_id, digest, "officer-a"))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    (listed,) = hub.list("hpf-withdrawal-bank")
    assert listed.state == PROPOSED and list(listed.approvers) == ["hpf-changzhou/officer-a"]
    entries = admin_entries(hub)
    denials = [e for e in entries if e.decision == "deny"]
    assert len(denials) == 6  # proposer, non-auditor, stale hash, 2 non-admins, twice
    assert all(e.agreements[0].content_hash == digest for e in denials
               if e.agreements)
    assert code_of(lambda: hub.stack.query("withdrawal-review", hub.subjects(),
                                           WITHDRAWAL)).code() == grpc.StatusCode.PERMISSION_DENIED


def test_revocation_is_immediate_and_persists(hub: Any) -> None:
    ids = hub.subjects()
    edu = [("education", "highest_degree")]
    hub.stack.query("loan-eligibility", ids, edu)
    rec = hub.revoke("hpf-loan-edu", roles=["auditor"])
    assert rec.state == admin_pb2.AGREEMENT_STATE_REVOKED
    refused = code_of(lambda: hub.stack.query("loan-eligibility", ids, edu))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    hub.restart_gateway()
    refused = code_of(lambda: hub.stack.query("loan-eligibility", ids, edu))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [r.state for r in hub.list("hpf-loan-edu")] == [admin_pb2.AGREEMENT_STATE_REVOKED]
    twice = code_of(lambda: hub.revoke("hpf-loan-edu", roles=["policy-admin"]))
    assert twice.code() == grpc.StatusCode.NOT_FOUND
    requester = code_of(lambda: hub.revoke("hpf-loan-ss", roles=["requester"]))
    assert requester.code() == grpc.StatusCode.PERMISSION_DENIED
    (revoke,) = [e for e in admin_entries(hub) if e.decision == "allow"]
    assert revoke.reason.startswith("revoke") and revoke.agreements[0].id == "hpf-loan-edu"
    assert revoke.agreements[0].content_hash == rec.agreement.content_hash


def test_bad_proposals_are_invalid_argument_and_store_nothing(hub: Any) -> None:
    bank = (hub.cfg.policies / "agreements" / "hpf-loan-bank.yaml").read_text()
    cases = {
        "colour": NEW + "colour: blue\n",
        "fields.income_avg_12m.keep_first": NEW.replace("edges: [3000, 5000, 8000]",
                                                        "edges: [3000], keep_first: 1"),
        "version": bank,  # the active v1 again
        "purpose": NEW.replace("withdrawal-review", "marketing"),
    }
    before = hub.list()
    for rule, text in cases.items():
        err = code_of(lambda text=text: hub.propose(text))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert rule in bad_request_fields(err), (rule, bad_request_fields(err))
    assert hub.list() == before
    assert admin_entries(hub) == []


def test_cli_round_trip(hub: Any, base_cfg: Any, tmp_path: Any, capsys: Any) -> None:
    from gateway.cli import main

    def pgw(*args: str, role: str, who: str) -> tuple[int, str, str]:
        code = main(["admin", *args, "--config", str(base_cfg.path), "--gateway",
                     hub.stack.address, "--org", "hpf-changzhou", "--role", role, "--as", who])
        out, err = capsys.readouterr()
        return code, out, err

    path = tmp_path / "new.yaml"
    path.write_text(NEW)
    code, out, _ = pgw("propose", str(path), role="policy-admin", who="admin-9")
    assert code == 0 and "hpf-withdrawal-bank v1 proposed" in out
    proposal = out.split("proposal ")[1].split(",")[0]
    digest = out.split("content hash ")[1].split(",")[0]
    code, _, err = pgw("approve", proposal, "--hash", "f" * 64, role="auditor", who="o-1")
    assert code == 2 and "FAILED_PRECONDITION" in err
    for officer in ("o-1", "o-2"):
        code, out, _ = pgw("approve", proposal, "--hash", digest, role="auditor", who=officer)
        assert code == 0
    assert "active" in out
    code, out, _ = pgw("list", "hpf-withdrawal-bank", role="requester", who="r")
    assert code == 0 and "hpf-changzhou/o-1,hpf-changzhou/o-2" in out and digest in out
    copy = tmp_path / "partner-copy.yaml"
    code, _, _ = pgw("export", "hpf-withdrawal-bank", "--out", str(copy), role="integrator",
                     who="bank-ops")
    assert code == 0 and copy.read_text() == NEW
    code, out, _ = pgw("revoke", "hpf-withdrawal-bank", "--reason", "ended", role="auditor",
                       who="o-3")
    assert code == 0 and "revoked" in out
    code, _, err = pgw("export", "hpf-withdrawal-bank", role="integrator", who="bank-ops")
    assert code == 2 and "NOT_FOUND" in err
