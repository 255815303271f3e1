"""Join grant checks: does an agreement's join (and aggregate) grant cover a job?

The gateway uses :func:`join_problems` and :func:`sum_grant` when it decides; the partner uses
them again through :func:`check_join_spec`, against its *own* agreement copy, before it reads
a single row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from google.protobuf.message import DecodeError

from connectors.sdk._join_wire import MAX_JOIN_ITEMS, MODES, OUTPUTS
from gateway.errors import NotFound, PermissionDenied
from gateway.pb.pgw.v1 import connector_pb2, join_pb2
from gateway.policy import Agreement, PolicySet, check_spec_against


def sum_grant(agreement: Agreement, value_field: str) -> tuple[str, int] | str:
    """(field, min_k) of the aggregate grant usable for intersection-sum, or why not."""
    usable = [g for g in agreement.fields if g.transform == "aggregate"
              and "intersection-sum" in (g.param_dict.get("ops") or ())]
    if value_field:
        usable = [g for g in usable if g.field == value_field]
    if len(usable) != 1:
        what = f"field {value_field}" if value_field else "exactly one field"
        return f"intersection-sum needs {what} granted as aggregate with op intersection-sum " \
               f"by {agreement.label}"
    return usable[0].field, int(usable[0].param_dict["min_k"])


def join_problems(agreement: Agreement, mode: str, output: str) -> list[str]:
    """Why the agreement's join grant does not cover (mode, output); empty if it does."""
    grant = agreement.join
    if grant is None:
        return [f"{agreement.label} grants no private join"]
    problems = []
    if mode not in grant.modes:
        problems.append(f"join mode {mode} not granted by {agreement.label} "
                        f"(granted: {', '.join(grant.modes)})")
    if output not in grant.outputs:
        problems.append(f"join output {output} not granted by {agreement.label} "
                        f"(granted: {', '.join(grant.outputs)})")
    if mode == "keyed-hash" and output == "intersection-sum":
        problems.append("intersection-sum needs mode ecdh-psi")
    return problems


def check_join_spec(spec: connector_pb2.ReleaseSpec, partner: str, policies: PolicySet,
                    today: Callable[[], date]) -> tuple[Agreement, join_pb2.JoinParams,
                                                        str | None, int]:
    """(agreement, params, value field, min_k) of a verified join spec that ``partner``'s own
    agreement copy covers; :class:`PermissionDenied` naming every problem otherwise."""
    if spec.operation != "join":
        raise PermissionDenied("this endpoint takes join specs only",
                               reason=f"spec for operation {spec.operation!r} sent to join")
    if spec.partner != partner:
        raise PermissionDenied("spec is for another partner", reason="spec partner mismatch")
    params = join_pb2.JoinParams()
    try:
        params.ParseFromString(spec.operation_spec)
    except DecodeError:
        raise PermissionDenied("join parameters unreadable",
                               reason="operation_spec does not parse") from None
    try:
        agreement = policies.agreement(spec.agreement.id)
    except NotFound:
        raise PermissionDenied("no such agreement at this partner",
                               reason="spec names an agreement unknown here") from None
    mode, output = MODES.get(params.mode, "?"), OUTPUTS.get(params.output, "?")
    problems = check_spec_against(
        agreement, org=spec.requester_org, purpose=spec.purpose, fields={},
        today=today(), content_hash=spec.agreement.content_hash,
        subject_count=params.requester_count)
    if agreement.partner != partner or agreement.version != spec.agreement.version:
        problems.append("agreement differs from this partner's copy")
    problems += join_problems(agreement, mode, output)
    value_field, min_k = None, 0
    if output == "intersection-sum" and not problems:
        found = sum_grant(agreement, params.value_field)
        if isinstance(found, str):
            problems.append(found)
        else:
            value_field, min_k = found
            if params.min_count < min_k:
                problems.append(f"min_count: got {params.min_count}, want at least {min_k}")
    if not 1 <= params.requester_count <= MAX_JOIN_ITEMS:
        problems.append(f"requester_count: got {params.requester_count}, "
                        f"want 1..{MAX_JOIN_ITEMS}")
    if problems:
        raise PermissionDenied("join spec is wider than the agreement",
                               reason="; ".join(problems))
    return agreement, params, value_field, min_k
