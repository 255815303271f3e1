"""The agreement registry on its own, on SQLite and on PostgreSQL: rules, audit first, states
persisted, immutable snapshots, a second replica catching up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.auth import Principal, Role
from gateway.errors import (
    AuditUnavailable,
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from gateway.policy import AdminEvent, AgreementRegistry
from gateway.policy._registry_types import AlreadyApproved

T = TypeVar("T")
BANK_V2 = (Path(__file__).resolve().parents[2] / "policies" / "agreements" /
           "hpf-loan-bank.yaml").read_text().replace("version: 1", "version: 2").replace(
    "band: 50000", "band: 100000")


def who(subject: str, *roles: Role) -> Principal:
    return Principal("hpf-changzhou", subject, frozenset(roles or (Role.AUDITOR,)), "j", "k")


ADMIN = who("admin-1", Role.POLICY_ADMIN, Role.AUDITOR)


class Sink:
    """An in-memory audit sink; ``fail`` makes every append raise."""

    def __init__(self) -> None:
        self.events: list[AdminEvent] = []
        self.fail = False

    async def __call__(self, event: AdminEvent) -> None:
        if self.fail:
            raise AuditUnavailable("injected", reason="injected")
        self.events.append(event)

    def steps(self) -> list[tuple[str, str, str]]:
        return [(e.step, e.decision, e.agreements[0].content_hash if e.agreements else "")
                for e in self.events]


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return asyncio.run(fn(*args))  # type: ignore[arg-type]


async def opened(dsn: str, policies: Path, sink: Sink) -> AgreementRegistry:
    return await AgreementRegistry.open(dsn, policies, audit=sink)


def test_lifecycle_persists_and_snapshots_are_immutable(registry_dsn: str,
                                                        policies_dir: Path) -> None:
    sink = Sink()

    async def scenario() -> None:
        reg = await opened(registry_dsn, policies_dir, sink)
        try:
            before = reg.current()
            v1 = before.agreement("hpf-loan-bank")
            rec = await reg.propose(BANK_V2, ADMIN, role="policy-admin", request_id="r1")
            h = rec.agreement.content_hash
            assert rec.state == "proposed" and reg.current().agreements == before.agreements
            with pytest.raises(PermissionDenied):
                await reg.approve(rec.proposal_id, h, ADMIN, request_id="r2")
            await reg.approve(rec.proposal_id, h, who("officer-a"), request_id="r3")
            with pytest.raises(AlreadyApproved):
                await reg.approve(rec.proposal_id, h, who("officer-a"), request_id="r4")
            assert reg.current().agreement("hpf-loan-bank") == v1
            with pytest.raises(FailedPrecondition, match="content_hash"):
                await reg.approve(rec.proposal_id, v1.content_hash, who("officer-b"),
                                  request_id="r5")
            done = await reg.approve(rec.proposal_id, h, who("officer-b"), request_id="r6")
            assert done.state == "active"
            assert done.approvers == ("hpf-changzhou/officer-a", "hpf-changzhou/officer-b")
            assert reg.current().agreement("hpf-loan-bank").content_hash == h
            assert before.agreement("hpf-loan-bank") == v1  # the old snapshot never changes
            states = {(r.agreement.version, r.state) for r in reg.records("hpf-loan-bank")}
            assert states == {(1, "superseded"), (2, "active")}
            await reg.revoke("hpf-loan-edu", who("officer-c"), role="auditor", reason="test",
                             request_id="r7")
            assert all(a.id != "hpf-loan-edu" for a in reg.current().agreements)
        finally:
            await reg.aclose()
        again = await opened(registry_dsn, policies_dir, Sink())
        try:
            assert again.current().agreement("hpf-loan-bank").content_hash == h
            assert all(a.id != "hpf-loan-edu" for a in again.current().agreements)
            assert {r.state for r in again.records("hpf-loan-edu")} == {"revoked"}
        finally:
            await again.aclose()

    run(scenario)
    steps = sink.steps()
    assert [(s, d) for s, d, _ in steps] == [
        ("propose", "allow"), ("approve", "deny"), ("approve", "allow"), ("approve", "deny"),
        ("approve", "deny"), ("approve", "allow"), ("activate", "allow"), ("revoke", "allow")]
    assert all(len(digest) == 64 for _, _, digest in steps)
    activate = sink.events[6]
    assert [a.version for a in activate.agreements] == [2, 1]  # new, then the superseded one


def test_audit_failure_changes_nothing(registry_dsn: str, policies_dir: Path) -> None:
    sink = Sink()

    async def scenario() -> None:
        reg = await opened(registry_dsn, policies_dir, sink)
        try:
            sink.fail = True
            with pytest.raises(AuditUnavailable):
                await reg.propose(BANK_V2, ADMIN, role="policy-admin", request_id="r1")
            with pytest.raises(AuditUnavailable):
                await reg.revoke("hpf-loan-edu", ADMIN, role="auditor", reason="",
                                 request_id="r2")
            await reg.refresh()
            assert len(reg.records("hpf-loan-bank")) == 1
            assert {r.state for r in reg.records("hpf-loan-edu")} == {"active"}
        finally:
            await reg.aclose()

    run(scenario)
    assert sink.events == []


def test_bad_proposals_name_the_rule_and_store_nothing(registry_dsn: str,
                                                       policies_dir: Path) -> None:
    sink = Sink()
    cases = {
        "colour": BANK_V2 + "colour: blue\n",
        "fields.outstanding_loans.bogus": BANK_V2.replace("band: 100000",
                                                          "band: 100000, bogus: 1"),
        "version": BANK_V2.replace("version: 2", "version: 1"),
        "yaml": BANK_V2 + "version: 3\n",  # duplicate key
        "overlap": BANK_V2.replace("id: hpf-loan-bank", "id: hpf-loan-bank-2"),
    }

    async def scenario() -> None:
        reg = await opened(registry_dsn, policies_dir, sink)
        try:
            for rule, text in cases.items():
                with pytest.raises(InvalidArgument) as info:
                    await reg.propose(text, ADMIN, role="policy-admin", request_id=rule)
                assert rule in [v.field for v in info.value.violations], info.value
            shipped = len(list((policies_dir / "agreements").glob("*.yaml")))
            assert len(reg.records()) == shipped  # the shipped files only
        finally:
            await reg.aclose()

    run(scenario)
    assert sink.events == []


def test_second_replica_sees_changes(registry_dsn: str, policies_dir: Path) -> None:
    async def scenario() -> None:
        one = await opened(registry_dsn, policies_dir, Sink())
        two = await opened(registry_dsn, policies_dir, Sink())
        try:
            await one.revoke("hpf-loan-ss", ADMIN, role="auditor", reason="",
                             request_id="r1")
            assert any(a.id == "hpf-loan-ss" for a in two.current().agreements)
            await two.refresh()
            assert all(a.id != "hpf-loan-ss" for a in two.current().agreements)
            with pytest.raises(Exception, match="no active version"):
                await two.revoke("hpf-loan-ss", ADMIN, role="auditor", reason="",
                                 request_id="r2")
        finally:
            await one.aclose()
            await two.aclose()

    run(scenario)


def test_edited_file_without_new_version_stops_the_start(registry_dsn: str,
                                                         policies_dir: Path) -> None:
    async def scenario() -> None:
        reg = await opened(registry_dsn, policies_dir, Sink())
        rec = await reg.propose(BANK_V2, ADMIN, role="policy-admin", request_id="r1")
        await reg.aclose()
        # Someone drops a different "v2" into the hub's directory instead of proposing it.
        path = policies_dir / "agreements" / "hpf-loan-bank.yaml"
        path.write_text(BANK_V2.replace("band: 100000", "band: 20000"))
        with pytest.raises(ConfigError, match="version"):
            await opened(registry_dsn, policies_dir, Sink())
        path.write_text(BANK_V2)  # the proposed text itself is fine: the row's state rules
        reg = await opened(registry_dsn, policies_dir, Sink())
        try:
            assert reg.record(rec.proposal_id).state == "proposed"
            assert all(a.id != "hpf-loan-bank" for a in reg.current().agreements)
        finally:
            await reg.aclose()

    run(scenario)
