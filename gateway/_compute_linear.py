"""The linear score: read and validate the requester's subjects, check the approved model and
each input's grant (``encrypted`` with op ``linear`` for this model), sign one ``encrypt`` spec
per input, evaluate on ciphertexts, audit and release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

from connectors.sdk._compute_he import context_digest
from gateway._compute_decision import ComputeDecisions, Refused, agreement_ref
from gateway._compute_he import evaluate_linear
from gateway.auth import Principal
from gateway.errors import FieldViolation, GatewayError, InvalidArgument, PermissionDenied
from gateway.packed_ids import (
    WIDTH,
    PackedIds,
    checked_beside,
    has_duplicates,
    ids_digest,
    in_thread_if_many,
    receive_ids,
    validate_packed_ids,
)
from gateway.pb.pgw.v1 import compute_pb2, connector_pb2
from gateway.policy import Agreement, ApprovedModel, FieldGrant
from gateway.privacy import SLOTS, PublicContext

#: Hard ceiling on subjects per call, whatever an agreement allows.
MAX_SUBJECTS = 1 << 21


async def read_subjects(header: compute_pb2.ComputeHeader,
                        stream: AsyncIterator[compute_pb2.ComputeRequest]) -> PackedIds:
    """Exactly ``header.subject_count`` distinct, normalised person ids from the stream."""
    want = header.subject_count
    if not 1 <= want <= MAX_SUBJECTS:
        raise Refused(InvalidArgument(FieldViolation(
            "header.subject_count", f"got {want}, want 1..{MAX_SUBJECTS}")))
    data = await receive_ids(stream, want)
    if len(data) != want * WIDTH:
        got = f"{len(data) // WIDTH} ids" if len(data) % WIDTH == 0 else f"{len(data)} bytes"
        raise Refused(InvalidArgument(FieldViolation(
            "subjects", f"got {got}, want header.subject_count {want} ids of {WIDTH} bytes")))
    # the duplicate check (a sort) runs beside the validation (numpy releases the GIL), while
    # the partners still wait for this request
    ids, duplicated = await checked_beside(_valid, data,
                                           partial(in_thread_if_many, has_duplicates))
    if duplicated:
        raise Refused(InvalidArgument(FieldViolation("subjects", "the same id is listed twice")))
    return PackedIds(ids)


def _valid(data: bytes) -> bytes:
    try:
        return validate_packed_ids(data, "subjects")
    except InvalidArgument as err:  # at most 20 violations, each naming a position
        raise Refused(InvalidArgument([
            FieldViolation(v.field, f"not a GB 11643-1999 id: {v.description}")
            for v in err.violations])) from None


class LinearCompute(ComputeDecisions):
    """``Compute`` with a ``linear`` header."""

    async def _subjects(self, header: compute_pb2.ComputeHeader,
                        stream: AsyncIterator[compute_pb2.ComputeRequest]) -> PackedIds:
        return await read_subjects(header, stream)

    async def _linear(self, header: compute_pb2.ComputeHeader,
                      stream: AsyncIterator[compute_pb2.ComputeRequest], audit: dict[str, Any],
                      principal: Principal, remaining: float
                      ) -> Iterator[compute_pb2.ComputeResponse]:
        model = self.models.get(header.linear.model)
        if model is None:
            raise Refused(InvalidArgument(FieldViolation(
                "header.linear.model", f"unknown model; want one of {sorted(self.models)}")))
        audit["partners"] = list(model.partners)
        what = (f"linear model {model.label} over "
                + ", ".join(i.name for i in model.inputs))
        ctx = self._context(header)
        subjects = await self._subjects(header, stream)
        audit["subjects"] = subjects
        if principal.org != model.requester_org or header.purpose != model.purpose:
            why = (f"{what}: model approved for {model.requester_org} / {model.purpose}, "
                   f"got {principal.org} / {header.purpose or 'no purpose'}")
            raise Refused(PermissionDenied(why, reason=why))
        grants: list[tuple[Agreement, FieldGrant]] = []
        for item in model.inputs:
            agreement, grant = self._agreement(principal, header.purpose, item.partner,
                                               item.field)
            params = grant.param_dict
            if (grant.transform != "encrypted" or "linear" not in params.get("ops", [])
                    or model.id not in params.get("models", [])):
                why = (f"{item.name} granted by {agreement.label} as {grant.describe()}, "
                       f"want encrypted with op linear for model {model.id}")
                raise Refused(PermissionDenied(why, refused_fields=[item.name], reason=why))
            grants.append((agreement, grant))
        for agreement, _ in grants:
            self._limit(agreement, len(subjects))
        unique = list({a.id: a for a, _ in grants}.values())
        audit["agreements"] = [agreement_ref(a) for a in unique]
        await self._spend(principal, unique, subjects)
        audit["released"] = [(i.partner, i.field, "encrypted") for i in model.inputs]
        n = len(subjects)
        espec: dict[str, Any] = dict(
            op="linear", model=model.id, context_sha256=context_digest(ctx.material),
            subjects_sha256=ids_digest(subjects.data), subject_count=n, chunk_slots=SLOTS)
        signed = [self._spec(f"{audit['request_id']}-{i}", principal, header.purpose, a, g,
                             "encrypt", compute_pb2.EncryptSpec(field=g.field, **espec)
                             .SerializeToString(deterministic=True))
                  for i, (a, g) in enumerate(grants)]
        # the audit form of the subjects is made while the partners encrypt
        pending = self.recorder.pseudonymise(subjects)
        try:
            presence, result = await self._evaluate(model, ctx, subjects, signed, remaining)
        except GatewayError as err:
            audit["subjects"] = await pending
            await self.recorder.record(**audit, decision="error", reason=f"{what}: {err.reason}")
            raise
        except asyncio.CancelledError:
            audit["subjects"] = await pending
            await self.recorder.record(**audit, decision="error",
                                       reason=f"{what}: cancelled after dispatch")
            raise
        audit["subjects"] = await pending
        summary = compute_pb2.ComputeSummary(
            request_id=audit["request_id"], operation="linear", model=model.id,
            model_version=model.version, count=n, chunk_slots=SLOTS, ciphertexts=len(result),
            presence=[compute_pb2.Presence(partner=p, found=f) for p, f in presence],
            agreements=audit["agreements"])
        return await self._release(audit, f"computed {what} (content {model.content_hash[:16]})",
                                   summary, result)

    async def _evaluate(self, model: ApprovedModel, ctx: PublicContext, subjects: PackedIds,
                        signed: list[connector_pb2.SignedReleaseSpec], remaining: float
                        ) -> tuple[list[tuple[str, bytes]], list[bytes]]:
        """Stream each input from its partner and add the weighted ciphertexts as they come."""
        return await evaluate_linear(self.partners, self._pool, model, ctx, subjects, signed,
                                     remaining)
