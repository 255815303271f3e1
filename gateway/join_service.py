"""The requester API for private joins: the streaming ``Join`` RPC (DESIGN.md, protocol sketches).

The gateway (hub) authenticates, validates and decides every job (org, role, purpose,
partner, the agreement's join grant: mode and output; intersection-sum also needs the aggregate
grant with op ``intersection-sum`` and enforces its ``min_k``; the requester set is bounded by
``limits.max_subjects_per_request``), signs a ReleaseSpec (operation ``join``) for the partner,
and relays. It never holds a PSI scalar, an HMAC key or an HE secret key:

* ecdh-psi membership: R's H(x)^a go to P; P's (H(x)^a)^b (R's order) and H(y)^b (shuffled)
  go back to R, which finishes alone. Audited (sizes) before anything of P's reaches R.
* ecdh-psi cardinality / intersection-sum: P's (H(x)^a)^b arrive shuffled and stay here; only
  H(y)^b go on to R, whose (H(y)^b)^a come back; the hub counts matches (and adds the matching
  Enc_R(v_y) slots: R never receives a per-item ciphertext), checks min_k, audits, answers.
* keyed-hash: the two ephemeral X25519 public keys are relayed; both sides' HMACs stay here;
  the hub matches and returns flags (membership) or the count. Neither side sees the other's.

Each job spends the agreement's rate and daily volume (the requester set size) budgets
(``gateway.budgets``) before the partner is contacted. Refusals are audited; every allowed job
is audited before its result is released.

The parts are private modules: ``_join_decision`` (decide, audit, the partner's spec),
``_join_relay`` (the per-mode relay state machines) and ``_join_streams`` (chunk checks, HE
material, partner error mapping).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._join_wire import CHANNEL_OPTIONS, CHUNK_ITEMS, MAX_JOIN_ITEMS
from gateway._join_decision import Job, decide, partner_spec, sizes
from gateway._join_relay import JobRelay
from gateway._join_streams import MAX_HE_MATERIAL, check_he, read_he_material
from gateway.auth import Principal, TokenVerifier, bearer_from_metadata
from gateway.budgets import Budgets, audit_decision
from gateway.errors import (
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import join_pb2, join_pb2_grpc
from gateway.policy import PolicySet
from gateway.recorder import AuditRecorder
from gateway.status import rpc
from gateway.upstream import partner_failure

__all__ = ["Job", "JoinService", "MAX_HE_MATERIAL"]

log = get_logger("pgw.join")


class JoinService(join_pb2_grpc.JoinServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, policies: Callable[[], PolicySet],
                 recorder: AuditRecorder, spec_key: Ed25519PrivateKey,
                 addresses: dict[str, str], spec_ttl_s: float = 30.0, timeout_s: float = 900.0,
                 clock: Callable[[], float] = time.time,
                 credentials: grpc.ChannelCredentials | None = None,
                 budgets: Budgets | None = None) -> None:
        self.verifier, self._policies, self.recorder = verifier, policies, recorder
        self._credentials = credentials  # mutual TLS to the connectors; None: plaintext
        self._key, self._ttl, self._timeout, self._clock = spec_key, spec_ttl_s, timeout_s, clock
        self._addresses = dict(addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.budgets = budgets or Budgets.in_process()

    # Seams for wire tests (STYLE habit 1: test helpers as API): every message the hub
    # receives from the requester and from the partner passes through these.
    def observe_requester(self, message: join_pb2.JoinRequest) -> None:
        """Called with each message received from the requester (default: nothing)."""

    def observe_partner(self, message: join_pb2.PartnerJoinResponse) -> None:
        """Called with each message received from the partner (default: nothing)."""

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _stub(self, partner: str) -> join_pb2_grpc.PartnerJoinServiceStub:
        if partner not in self._channels:
            self._channels[partner] = (
                grpc.aio.insecure_channel(self._addresses[partner], options=CHANNEL_OPTIONS)
                if self._credentials is None else grpc.aio.secure_channel(
                    self._addresses[partner], self._credentials, options=CHANNEL_OPTIONS))
        return join_pb2_grpc.PartnerJoinServiceStub(self._channels[partner])

    # ------------------------------------------------------------------ decision

    def _decide(self, rid: str, principal: Principal, start: join_pb2.JoinStart
                ) -> tuple[Job | None, str, dict[str, Any]]:
        """(job, "") when allowed, else (None, reason); plus the audit fields."""
        return decide(rid, principal, start, self._policies(), self._addresses, self._clock)

    # ------------------------------------------------------------------ the RPC

    @rpc
    async def Join(self, request_iterator: AsyncIterator[join_pb2.JoinRequest],
                   context: grpc.aio.ServicerContext, rid: str) -> None:
        principal = self.verifier.verify(bearer_from_metadata(context.invocation_metadata() or ()))
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("kind") != "start":
            raise InvalidArgument(FieldViolation("start", "missing: a join opens with start"))
        self.observe_requester(first)
        start = first.start
        job, reason, audit = self._decide(rid, principal, start)
        if job is None:
            await self.recorder.record(**audit, released=[], decision="deny", reason=reason)
            raise PermissionDenied(reason, reason=reason)
        try:  # rate and volume (the requester set size: the hub never sees the ids)
            await self.budgets.request(principal.org, [job.agreement],
                                       count=start.requester_count)
        except GatewayError as err:
            await self.recorder.record(**audit, released=[], decision=audit_decision(err),
                                       reason=err.reason)
            raise
        try:
            await self._run(job, requests, context)
        except GatewayError as err:
            if not job.audited:
                await self.recorder.record(**audit, released=[], decision="error",
                                           reason=f"{sizes(job)}: {err.reason}")
            raise
        except asyncio.CancelledError:
            if not job.audited:
                await asyncio.shield(self.recorder.record(
                    **audit, released=[], decision="error",
                    reason=f"{sizes(job)}: cancelled by the requester"))
            raise

    async def _run(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                   context: grpc.aio.ServicerContext) -> None:
        start = job.start
        sum_material = b""
        if job.output == "intersection-sum":
            sum_material = await read_he_material(requests, self.observe_requester)
            await asyncio.to_thread(check_he, start.he_public, sum_material)
        remaining = context.time_remaining()
        timeout = self._timeout if remaining is None else max(0.001, min(self._timeout, remaining))
        call = self._stub(start.partner).PartnerJoin(timeout=timeout)
        try:
            accepted = await self._open_partner(job, call)
            job.partner_count = accepted.partner_count
            if job.partner_count > MAX_JOIN_ITEMS:
                raise FailedPrecondition("the partner's set is too large for one job",
                                         reason=f"partner set {job.partner_count}")
            reply = join_pb2.JoinAccepted(
                job_id=job.rid, agreement=job.audit["agreements"][0],
                partner_count=job.partner_count, keyed_public_key=accepted.keyed_public_key,
                chunk_items=CHUNK_ITEMS)
            relay = JobRelay(self, job, requests, call, context)
            if job.mode == "keyed-hash":
                await call.done_writing()
                await relay.keyed(reply)
            elif job.output == "membership":
                await relay.membership(reply)
            else:
                await relay.matched(reply, sum_material)
        except grpc.aio.AioRpcError as err:
            raise partner_failure(start.partner, err, operation="join") from None
        finally:
            call.cancel()

    async def _open_partner(self, job: Job, call: Any) -> join_pb2.PartnerAccepted:
        start = job.start
        spec = partner_spec(job, self._key, self._clock(), self._ttl)
        await call.write(join_pb2.PartnerJoinRequest(spec=spec))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "accepted":
            raise Unavailable(f"partner {start.partner} did not accept the join",
                              reason="partner answered without accepting")
        self.observe_partner(first)
        return first.accepted  # type: ignore[no-any-return]
