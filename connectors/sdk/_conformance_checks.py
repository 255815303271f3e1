"""The conformance checks: one :class:`Battery` of calls against one connector.

Each check talks to the connector exactly as the gateway does (signed ReleaseSpecs over gRPC)
and records one :class:`CheckResult`; :func:`~connectors.sdk._conformance.check_connector`
runs them in order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._schema import FieldType, Sensitivity
from connectors.sdk._spec import sign_spec
from connectors.sdk._transforms import TRANSFORMS
from gateway.answers import check_answer
from gateway.errors import UpstreamViolation
from gateway.pb.pgw.v1 import common_pb2, connector_pb2, connector_pb2_grpc
from gateway.policy import Agreement

__all__ = ["MALFORMED", "REFUSED", "Battery", "CheckResult"]

_KINDS = {connector_pb2.FieldKind.Value(f"FIELD_KIND_{t.name}"): t for t in FieldType}
#: Well-formed-looking subjects that are not GB 11643 ids (bad length, bad checksum, SQL).
MALFORMED = ("12345", "320402199001011230", "' OR '1'='1", "320402199001011234; DROP TABLE x")
REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and why (got/want when it failed)."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


class Battery:
    """The checks against one connector, sharing its stub, key, agreement and results."""

    def __init__(self, stub: connector_pb2_grpc.ConnectorServiceStub, key: Ed25519PrivateKey,
                 agreement: Agreement, subjects: Sequence[str], timeout_s: float) -> None:
        self.stub, self.key, self.a = stub, key, agreement
        self.subjects = list(subjects)
        self.timeout = timeout_s
        self.results: list[CheckResult] = []
        self.types: dict[str, FieldType] = {}
        self.grants = [g for g in agreement.fields
                       if g.transform in TRANSFORMS and TRANSFORMS[g.transform].releasable]

    def record(self, name: str, ok: bool, detail: str) -> None:
        self.results.append(CheckResult(name, ok, detail))

    def spec(self, grants: Sequence[Any] | None = None, **over: Any) -> connector_pb2.ReleaseSpec:
        now_ms = int(time.time() * 1000)
        a = self.a
        fields = [common_pb2.FieldRelease(field=g.field, transform=g.transform,
                                          params_json=g.params_json)
                  for g in (self.grants if grants is None else grants)]
        spec = connector_pb2.ReleaseSpec(
            request_id=uuid.uuid4().hex, requester_org=a.requester_org, purpose=a.purpose,
            agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                              content_hash=a.content_hash),
            partner=a.partner, subjects=self.subjects, fields=fields,
            issued_at_ms=now_ms, expires_at_ms=now_ms + 30_000)
        for name, value in over.items():
            if name in ("fields", "subjects"):
                del getattr(spec, name)[:]
                getattr(spec, name).extend(value)
            else:
                setattr(spec, name, value)
        return spec

    async def fetch(self, signed: connector_pb2.SignedReleaseSpec, timeout: float | None = None
                    ) -> tuple[connector_pb2.FetchResponse | None, grpc.StatusCode, str]:
        try:
            answer = await self.stub.Fetch(connector_pb2.FetchRequest(signed_spec=signed),
                                           timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as err:
            return None, err.code(), err.details() or ""
        return answer, grpc.StatusCode.OK, ""

    def shape(self, spec: connector_pb2.ReleaseSpec,
              answer: connector_pb2.FetchResponse) -> str | None:
        """``None`` when the answer matches the spec exactly, else what is wrong."""
        try:
            check_answer(spec, answer, self.types)
        except UpstreamViolation as err:
            return err.reason
        except KeyError as err:
            return f"value for an undeclared field {err}"
        return None

    # -- the checks ----------------------------------------------------------------------------

    async def describe(self) -> None:
        try:
            d = await self.stub.Describe(connector_pb2.DescribeRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            self.record("describe", False, f"Describe failed: {err.code().name}")
            return
        problems = []
        if d.partner != self.a.partner:
            problems.append(f"partner: got {d.partner!r}, want {self.a.partner!r}")
        names = [f.name for f in d.fields]
        if not names or len(set(names)) != len(names):
            problems.append("fields: want at least one, names unique")
        sensitivities = {s.value for s in Sensitivity}
        for f in d.fields:
            if f.kind not in _KINDS:
                problems.append(f"{f.name}: kind unspecified")
            if f.sensitivity not in sensitivities:
                problems.append(f"{f.name}: sensitivity {f.sensitivity!r} not a known label")
            if not f.description.strip():
                problems.append(f"{f.name}: no description")
        self.types = {f.name: _KINDS[f.kind] for f in d.fields if f.kind in _KINDS}
        missing = sorted(g.field for g in self.a.fields if g.field not in self.types)
        if missing:
            problems.append(f"agreement fields not described: {', '.join(missing)}")
        absent = sorted({g.transform for g in self.a.fields} - set(d.transforms))
        if absent:
            problems.append(f"transforms not declared: {', '.join(absent)}")
        self.record("describe", not problems, "; ".join(problems)
                    or f"partner {d.partner}, {len(names)} fields, {len(d.transforms)} transforms")

    async def valid(self) -> None:
        spec = self.spec()
        signed = sign_spec(spec, self.key)
        answer, code, why = await self.fetch(signed)
        if answer is None:
            self.record("valid spec answered", False, f"got {code.name} ({why}), want OK")
            self.record("replayed spec refused", False, "not run: a valid spec was refused")
            return
        wrong = self.shape(spec, answer)
        found = sum(r.found for r in answer.rows)
        self.record("valid spec answered", wrong is None and found > 0,
                    wrong or (f"{found}/{len(self.subjects)} subjects found" if found else
                              "no subject found: pass subjects the partner holds"))
        again, code, why = await self.fetch(signed)
        self.record("replayed spec refused", again is None and code in REFUSED,
                    f"got {code.name}" + (f" ({why})" if why else ""))

    async def undeclared(self) -> None:
        """Each grant alone: only that field comes back, for every row."""
        extras: list[str] = []
        for g in self.grants:
            spec = self.spec([g])
            answer, code, _ = await self.fetch(sign_spec(spec, self.key))
            if answer is None:
                continue  # reported by the transform check
            for row in answer.rows:
                extras += [v.field for v in row.values if v.field != g.field]
        self.record("no undeclared field returned", not extras,
                    f"got extra fields {sorted(set(extras))}" if extras else
                    f"{len(self.grants)} single-field releases returned only their field")

    async def transforms(self) -> None:
        for g in self.grants:
            spec = self.spec([g])
            answer, code, why = await self.fetch(sign_spec(spec, self.key))
            name = f"transform {g.transform} on {g.field}"
            if answer is None:
                self.record(name, False, f"got {code.name} ({why}), want OK")
                continue
            wrong = self.shape(spec, answer)
            values = sum(1 for r in answer.rows for v in r.values if v.HasField("value"))
            self.record(name, wrong is None, wrong or f"{values} values shaped like "
                        f"{g.describe()}")

    async def refused(self, name: str, signed: connector_pb2.SignedReleaseSpec,
                      want: tuple[grpc.StatusCode, ...] = REFUSED) -> None:
        answer, code, why = await self.fetch(signed)
        detail = f"got {code.name}" + (f" ({why})" if why else "")
        if answer is not None:
            leaked = sum(len(r.values) for r in answer.rows)
            detail += f", {leaked} values released"
        self.record(name, answer is None and code in want,
                    detail + ("" if code in want else
                              f", want {' or '.join(c.name for c in want)}"))

    async def signatures(self) -> None:
        spec = self.spec()
        good = sign_spec(spec, self.key)
        await self.refused("unsigned spec refused", connector_pb2.SignedReleaseSpec(
            spec=good.spec, key_id=good.key_id))
        stranger = Ed25519PrivateKey.generate()
        forged = sign_spec(self.spec(), stranger)
        forged.key_id = good.key_id
        await self.refused("wrongly-signed spec refused", forged)
        await self.refused("spec signed by an unknown key refused",
                           sign_spec(self.spec(), stranger))
        tampered = connector_pb2.ReleaseSpec.FromString(good.spec)
        tampered.purpose += "-x"
        await self.refused("tampered spec refused", connector_pb2.SignedReleaseSpec(
            spec=tampered.SerializeToString(deterministic=True), signature=good.signature,
            key_id=good.key_id))

    async def expiry(self) -> None:
        now_ms = int(time.time() * 1000)
        await self.refused("expired spec refused", sign_spec(
            self.spec(issued_at_ms=now_ms - 1_000, expires_at_ms=now_ms - 1), self.key))

    async def widened(self) -> None:
        granted = {g.field for g in self.a.fields}
        other = sorted(set(self.types) - granted)
        variants: list[tuple[str, connector_pb2.ReleaseSpec]] = []
        if other:
            extra = common_pb2.FieldRelease(field=other[0], transform="plain", params_json="{}")
            variants.append((f"ungranted field {other[0]}",
                             self.spec(fields=[*self.spec().fields, extra])))
        variants.append(("undeclared field", self.spec(fields=[
            *self.spec().fields, common_pb2.FieldRelease(field="__undeclared__",
                                                         transform="plain")])))
        for g in self.grants:
            if g.transform != "plain":
                variants.append((f"{g.field} as plain instead of {g.transform}", self.spec(
                    fields=[common_pb2.FieldRelease(field=g.field, transform="plain",
                                                    params_json="{}")])))
                break
        variants.append(("another requester org", self.spec(
            requester_org=self.a.requester_org + "-other")))
        variants.append(("another purpose", self.spec(purpose=self.a.purpose + "-other")))
        for what, spec in variants:
            await self.refused(f"widened spec refused ({what})", sign_spec(spec, self.key))

    async def malformed(self) -> None:
        for subject in MALFORMED:
            await self.refused(f"malformed subject {subject!r} rejected",
                               sign_spec(self.spec(subjects=[subject]), self.key),
                               (grpc.StatusCode.INVALID_ARGUMENT,))

    async def deadline(self) -> None:
        """A full-size request answers within a 2 s deadline; one whose deadline passes ends
        DEADLINE_EXCEEDED (never another error); the connector then serves the next call."""
        limit = self.a.limits.max_subjects_per_request
        full = (self.subjects * (limit // max(1, len(self.subjects)) + 1))[:limit]
        started = time.monotonic()
        answer, code, why = await self.fetch(sign_spec(self.spec(subjects=full), self.key),
                                             timeout=2.0)
        took = time.monotonic() - started
        _, tiny, _ = await self.fetch(sign_spec(self.spec(), self.key), timeout=0.0005)
        after, code2, why2 = await self.fetch(sign_spec(self.spec(), self.key), timeout=2.0)
        problems = []
        if answer is None:
            problems.append(f"{len(full)} subjects under a 2 s deadline: got {code.name} "
                            f"({why}), want OK")
        if tiny not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.OK):
            problems.append(f"0.5 ms deadline: got {tiny.name}, want DEADLINE_EXCEEDED")
        if after is None:
            problems.append(f"next call: got {code2.name} ({why2}), want OK")
        self.record("deadlines honoured", not problems, "; ".join(problems) or
                    f"{len(full)} subjects answered in {took * 1000:.0f} ms of 2000; "
                    f"0.5 ms deadline ended {tiny.name}; next call answered")
