"""The connector server: wraps any :class:`DataSource` with spec verification and transforms.

A connector author writes data access only. Everything that guards a release lives here:
the signed spec is verified (signature, freshness, replay), re-checked against the partner's
*own* copy of the agreement (anything wider is refused), subjects are validated, only the
granted fields are read, and every value is transformed at the source before it leaves.
``Fetch`` and each item of ``FetchBatch`` (``_fetch_batch``) take that one path, ``_release``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from connectors.sdk._datasource import DataSource
from connectors.sdk._fetch_batch import fetch_batch
from connectors.sdk._schema import FieldType
from connectors.sdk._spec import SpecVerifier
from connectors.sdk._transforms import TRANSFORMS, build_transform, derive_pseudonym_key
from connectors.sdk._values import to_value
from connectors.sdk._witness import Witness
from gateway.errors import FailedPrecondition, NotFound, PermissionDenied
from gateway.pb.pgw.v1 import common_pb2, connector_pb2, connector_pb2_grpc
from gateway.policy import Agreement, PolicySet, check_spec_against
from gateway.status import rpc
from gateway.validate import validate_person_ids

KIND = {t: connector_pb2.FieldKind.Value(f"FIELD_KIND_{t.name}") for t in FieldType}
MAX_MESSAGE = 16 * 1024 * 1024


class ConnectorService(connector_pb2_grpc.ConnectorServiceServicer):
    """Serves one partner's DataSource under that partner's own agreements."""

    def __init__(self, source: DataSource, policies: PolicySet, verifier: SpecVerifier,
                 pseudonym_secret: bytes, *, today: Callable[[], date] = date.today,
                 witness: Witness | None = None) -> None:
        self.source = source
        self.partner = source.schema.partner
        self.policies = policies
        self.verifier = verifier
        self._secret = pseudonym_secret
        self._today = today
        self._pipelines: dict[tuple[str, str], list[tuple[str, str, Any]]] = {}
        self._checked: dict[tuple[Any, ...], list[str]] = {}
        self.witness = witness

    @rpc
    async def Describe(self, request: connector_pb2.DescribeRequest,
                       context: grpc.aio.ServicerContext,
                       rid: str) -> connector_pb2.DescribeResponse:
        return connector_pb2.DescribeResponse(
            partner=self.partner,
            fields=[connector_pb2.FieldInfo(name=f.name, kind=KIND[f.type],
                                            sensitivity=f.sensitivity.value,
                                            description=f.description)
                    for f in self.source.schema.fields],
            transforms=sorted(TRANSFORMS))

    @rpc
    async def Fetch(self, request: connector_pb2.FetchRequest,
                    context: grpc.aio.ServicerContext, rid: str) -> connector_pb2.FetchResponse:
        return await self._release(request.signed_spec)

    @rpc
    async def FetchBatch(self, request: connector_pb2.FetchBatchRequest,
                         context: grpc.aio.ServicerContext,
                         rid: str) -> connector_pb2.FetchBatchResponse:
        return await fetch_batch(self._release, request.requests)

    async def _release(self, signed: connector_pb2.SignedReleaseSpec
                       ) -> connector_pb2.FetchResponse:
        """One signed spec, verified and answered: the whole of a Fetch, and of each FetchBatch
        item. Every check runs before the first ``await`` (FetchBatch relies on it for replay
        order)."""
        spec = self.verifier.verify(signed)
        if spec.operation:
            raise PermissionDenied("a Fetch takes a plain release spec",
                                   reason=f"spec for operation {spec.operation!r} sent to Fetch")
        if any(f.transform not in TRANSFORMS or not TRANSFORMS[f.transform].releasable
               for f in spec.fields):
            raise PermissionDenied("a Fetch releases plain values only",
                                   reason="spec names a withheld (encrypted/aggregate) grant")
        agreement = self._own_agreement(spec)
        subjects = validate_person_ids(list(spec.subjects), field="spec.subjects")
        if len(subjects) > agreement.limits.max_subjects_per_request:
            raise PermissionDenied("too many subjects for the agreement",
                                   reason="limits.max_subjects_per_request exceeded")
        pipeline = self._pipeline(agreement, [f.field for f in spec.fields])
        readable = [field for field, transform, _ in pipeline if transform != "suppress"]
        # The call's deadline bounds this: when it passes, grpc cancels the handler and with
        # it the read (no extra timer task per call).
        rows = await self.source.fetch(subjects, readable)
        return connector_pb2.FetchResponse(request_id=spec.request_id,
                                           rows=self._rows(rows, pipeline))

    @rpc
    async def Cosign(self, request: connector_pb2.CosignRequest,
                     context: grpc.aio.ServicerContext, rid: str) -> connector_pb2.CosignResponse:
        if self.witness is None:
            raise FailedPrecondition("this connector is not configured as a witness")
        line, size = await asyncio.to_thread(self.witness.cosign, request.checkpoint,
                                             request.old_size, list(request.consistency_proof))
        return connector_pb2.CosignResponse(cosignature=line, size=size)

    def _own_agreement(self, spec: connector_pb2.ReleaseSpec) -> Agreement:
        if spec.partner != self.partner:
            raise PermissionDenied("spec is for another partner", reason="spec partner mismatch")
        try:
            agreement = self.policies.agreement(spec.agreement.id)
        except NotFound:
            raise PermissionDenied("no such agreement at this partner",
                                   reason="spec names an agreement unknown here") from None
        if (agreement.partner != self.partner or agreement.version != spec.agreement.version
                or agreement.content_hash != spec.agreement.content_hash):
            raise PermissionDenied("agreement differs from this partner's copy",
                                   reason="spec agreement version or hash mismatch")
        problems = self._problems(agreement, spec)
        if problems:
            raise PermissionDenied("spec is wider than the agreement",
                                   reason="; ".join(problems))
        return agreement

    def _problems(self, agreement: Agreement, spec: connector_pb2.ReleaseSpec) -> list[str]:
        """``check_spec_against`` for this spec's grants, memoised per (agreement, day, grants):
        the same release shape recurs on every call, the check need not."""
        shape = tuple((f.field, f.transform, f.params_json) for f in spec.fields)
        key = (agreement.content_hash, self._today(), spec.requester_org, spec.purpose, shape)
        cached = self._checked.get(key)
        if cached is None:
            fields = {f: (t, json.loads(p or "{}")) for f, t, p in shape}
            if len(fields) != len(shape) or not fields:
                cached = ["spec fields empty or repeated"]
            else:
                cached = check_spec_against(agreement, org=spec.requester_org,
                                            purpose=spec.purpose, fields=fields, today=key[1])
            if len(self._checked) > 4096:
                self._checked.clear()
            self._checked[key] = cached
        return cached

    def _pipeline(self, agreement: Agreement, fields: Sequence[str]) -> list[tuple[str, str, Any]]:
        """(field, transform name, transform) per field, built once per agreement version."""
        out = []
        for field in fields:
            key = (agreement.content_hash, field)
            if key not in self._pipelines:
                grant = agreement.grant(field)
                spec = self.source.schema.field(field)
                if grant is None or spec is None:  # check_spec_against rules this out
                    raise PermissionDenied("field not granted", reason="field not granted")
                fn = build_transform(grant.transform, grant.param_dict, spec.type,
                                     pseudonym_key=derive_pseudonym_key(self._secret, agreement.id))
                self._pipelines[key] = [(field, grant.transform, fn)]
            out.extend(self._pipelines[key])
        return out

    def _rows(self, rows: Sequence[Any], pipeline: list[tuple[str, str, Any]]
              ) -> list[connector_pb2.Row]:
        out = []
        for index, row in enumerate(rows):
            if row is None:
                out.append(connector_pb2.Row(subject_index=index, found=False))
                continue
            values = []
            for field, transform, fn in pipeline:
                raw = None if transform == "suppress" else row.get(field)
                fv = common_pb2.FieldValue(partner=self.partner, field=field, transform=transform)
                encoded = to_value(fn(raw), fn.output_type)
                if encoded is not None:
                    fv.value.CopyFrom(encoded)
                values.append(fv)
            out.append(connector_pb2.Row(subject_index=index, found=True, values=values))
        return out


async def start_connector(service: ConnectorService, address: str, *,
                          join: Any = None, credentials: grpc.ServerCredentials | None = None,
                          interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
                          ) -> tuple[grpc.aio.Server, int]:
    """Start a grpc.aio server for ``service`` with the standard health service.

    ``join``: the partner's ``PartnerJoinService`` (``connectors.sdk._join``), if it serves joins.
    ``credentials``: TLS for the port (plaintext without); ``interceptors``: e.g. the check
    that the TLS peer is the gateway (``gateway.pki.GatewayOnly``).
    """
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)],
                             interceptors=list(interceptors) or None)
    connector_pb2_grpc.add_ConnectorServiceServicer_to_server(service, server)
    if join is not None:
        from gateway.pb.pgw.v1 import join_pb2_grpc

        join_pb2_grpc.add_PartnerJoinServiceServicer_to_server(join, server)
    from connectors.sdk._compute import add_compute_service  # local: _compute imports this

    add_compute_service(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = (server.add_insecure_port(address) if credentials is None
            else server.add_secure_port(address, credentials))
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    await health_servicer.set("pgw.v1.ConnectorService", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("pgw.v1.PartnerComputeService",
                              health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port
