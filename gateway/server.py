"""Assembly: build the gateway and the connectors from one config and serve them on grpc.aio."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from connectors.sdk._join import PartnerJoinService, open_join_set
from connectors.sdk._server import ConnectorService, start_connector
from connectors.sdk._spec import SpecVerifier
from connectors.sdk._witness import Witness
from gateway import pki
from gateway.admin_service import AdminService, admin_audit
from gateway.audit import SIG_TYPE_COSIGNATURE_V1, NoteSigner, NoteVerifier
from gateway.audit._log import AuditLog
from gateway.audit_service import AuditService
from gateway.auth import JwksKeySet, TokenVerifier
from gateway.budgets import Budgets, budget_secret, default_budget_dsn, open_budget_store
from gateway.compute_service import ComputeService, PartnerCompute
from gateway.config import Config
from gateway.dispatch import ConnectorClients
from gateway.join_service import JoinService
from gateway.keys import load_private_key, load_public_key, load_secret
from gateway.logs import get_logger
from gateway.metrics import GaugeFunc
from gateway.ops import AdminEndpoint
from gateway.pb.pgw.v1 import (
    admin_pb2_grpc,
    audit_pb2_grpc,
    compute_pb2_grpc,
    gateway_pb2_grpc,
    join_pb2_grpc,
)
from gateway.policy import AgreementRegistry, default_catalogues, load_models, load_policies
from gateway.recorder import AuditRecorder
from gateway.service import GatewayService
from gateway.witnessing import Witnessing

log = get_logger("pgw.server")
MAX_MESSAGE = 16 * 1024 * 1024
#: How often a gateway re-reads the agreement registry for other replicas' changes.
REGISTRY_REFRESH_S = 1.0
#: The public port's services, as gRPC reflection on the admin port lists them.
PUBLIC_SERVICES = ("pgw.v1.GatewayService", "pgw.v1.AuditService", "pgw.v1.AdminService",
                   "pgw.v1.ComputeService", "pgw.v1.JoinService", "grpc.health.v1.Health")


@dataclass
class Running:
    """A started server: its port and how to stop it (draining in-flight calls)."""

    server: grpc.aio.Server
    port: int
    closers: list  # async callables run after the server stopped
    admin: AdminEndpoint | None = None  # /metrics and reflection, when admin_listen is set

    async def stop(self, grace: float = 5.0) -> None:
        await self.server.stop(grace)
        for close in self.closers:
            await close()


async def open_audit_log(cfg: Config) -> AuditLog:
    signer = NoteSigner(cfg.audit_origin, load_private_key(cfg.log_key))
    return await AuditLog.open(cfg.audit_dsn, hash_name=cfg.audit_hash, origin=cfg.audit_origin,
                               signer=signer)


async def open_budgets(cfg: Config) -> Budgets:
    """The inference budgets: ``[budgets] dsn``, else beside the audit log; counter keys for
    subjects and cohorts are HMACs under a key derived from the audit pseudonym secret."""
    secret = budget_secret(load_secret(cfg.audit_pseudonym_key))
    return Budgets(await open_budget_store(cfg.budgets_dsn or default_budget_dsn(cfg.audit_dsn)),
                   secret)


async def start_gateway(cfg: Config, *, listen: str | None = None) -> Running:
    verifier = TokenVerifier(JwksKeySet(cfg.jwks), issuer=cfg.issuer, audience=cfg.audience,
                             leeway_s=cfg.leeway_s)
    models = load_models(cfg.policies)  # approved models for Compute; a bad file fails here
    # [tls]: mutual TLS to every connector channel (dispatch, compute, join); else plaintext
    dial = pki.gateway_channel_credentials(cfg.tls) if cfg.tls is not None else None
    clients = ConnectorClients({p: c.address for p, c in cfg.connectors.items()},
                               timeout_s=cfg.request_timeout_s, credentials=dial,
                               max_inflight=cfg.connector_max_inflight)
    audit_log = await open_audit_log(cfg)
    recorder = AuditRecorder(audit_log, load_secret(cfg.audit_pseudonym_key))
    # Agreements: the policy files as baseline, approvals and revocations from the registry
    # tables in the audit database; the service reads the current snapshot on every call.
    try:
        registry = await AgreementRegistry.open(cfg.audit_dsn, cfg.policies,
                                                audit=admin_audit(recorder),
                                                catalogues=default_catalogues(),
                                                refresh_interval_s=REGISTRY_REFRESH_S)
    except BaseException:
        await audit_log.aclose()
        raise
    try:
        budgets = await open_budgets(cfg)
    except BaseException:
        await registry.aclose()
        await audit_log.aclose()
        raise
    service = GatewayService(verifier=verifier, policies=registry.current, clients=clients,
                             recorder=recorder, spec_key=load_private_key(cfg.spec_key),
                             spec_ttl_s=cfg.spec_ttl_s, budgets=budgets)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)])
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(service, server)
    compute = PartnerCompute({p: c.address for p, c in cfg.connectors.items()},
                             credentials=dial)
    compute_pb2_grpc.add_ComputeServiceServicer_to_server(ComputeService(
        verifier=verifier, policies=registry.current, models=models,
        partners=compute, recorder=recorder, spec_key=load_private_key(cfg.spec_key),
        spec_ttl_s=cfg.spec_ttl_s, budgets=budgets), server)
    join = JoinService(verifier=verifier, policies=registry.current, recorder=recorder,
                       spec_key=load_private_key(cfg.spec_key), spec_ttl_s=cfg.spec_ttl_s,
                       addresses={p: c.address for p, c in cfg.connectors.items()},
                       credentials=dial, budgets=budgets)
    join_pb2_grpc.add_JoinServiceServicer_to_server(join, server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(
        AuditService(verifier=verifier, audit_log=audit_log, recorder=recorder), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminService(verifier=verifier, registry=registry), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if cfg.tls is not None and cfg.tls.requester_tls:
        port = server.add_secure_port(listen or cfg.listen,
                                      pki.requester_server_credentials(cfg.tls))
    else:
        port = server.add_insecure_port(listen or cfg.listen)
    await server.start()
    for name in ("", "pgw.v1.GatewayService", "pgw.v1.AuditService", "pgw.v1.AdminService",
                 "pgw.v1.ComputeService", "pgw.v1.JoinService"):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    witnessing = Witnessing(audit_log, clients, interval_s=cfg.witness_interval_ms / 1000)
    witnessing.start()
    log.info("gateway_started", port=port, partners=clients.partners)
    closers = [witnessing.aclose, clients.aclose, compute.aclose, join.aclose, budgets.aclose,
               registry.aclose, audit_log.aclose]
    admin = await _start_admin(cfg, server, audit_log, closers) if cfg.admin_listen else None
    return Running(server, port, [*([admin.aclose] if admin else []), *closers], admin=admin)


async def _start_admin(cfg: Config, server: grpc.aio.Server, audit_log: AuditLog,
                       closers: list) -> AdminEndpoint:
    """The admin endpoint; if it cannot start, the gateway just started is stopped again."""
    depth = GaugeFunc("pgw_audit_queue_depth", "Audit appends queued and not yet committed.",
                      lambda: audit_log.queue_depth)
    assert cfg.admin_listen is not None
    try:
        return await AdminEndpoint.start(cfg.admin_listen, PUBLIC_SERVICES, gauges=[depth])
    except BaseException:
        await server.stop(0)
        for close in closers:
            await close()
        raise


async def start_partner(cfg: Config, partner: str, *, listen: str | None = None) -> Running:
    from connectors.registry import open_source  # local: each partner's DataSource factory
    from connectors.sdk import SourceConfig

    ccfg = cfg.connector(partner)
    catalogues = default_catalogues()
    policies = load_policies(ccfg.policies, catalogues).for_partner(partner)
    source = open_source(partner, SourceConfig(partner, ccfg.database, ccfg.sql))
    verifier = SpecVerifier([load_public_key(p) for p in ccfg.trusted_gateway_keys])
    witness = Witness(
        NoteSigner(cfg.witness_name(partner), load_private_key(ccfg.witness_key),
                   SIG_TYPE_COSIGNATURE_V1),
        NoteVerifier(cfg.audit_origin, load_public_key(cfg.log_public_key)),
        origin=cfg.audit_origin, hash_name=cfg.audit_hash, state_path=ccfg.witness_state)
    service = ConnectorService(source, policies, verifier, load_secret(ccfg.pseudonym_secret),
                               witness=witness)
    join_set = open_join_set(partner, ccfg.database, source.schema)
    join = join_set and PartnerJoinService(partner, join_set, policies, verifier)
    tls: dict[str, Any] = {}
    if cfg.tls is not None:  # mutual TLS; only the gateway's certificate is admitted
        creds, gateway_only = pki.connector_tls(cfg.tls, ccfg)
        tls = {"credentials": creds, "interceptors": [gateway_only]}
    server, port = await start_connector(service, listen or ccfg.address, join=join, **tls)
    log.info("connector_started", partner=partner, port=port)
    return Running(server, port, [source.aclose, *([join.aclose] if join else [])])


async def serve_forever(running: Running) -> None:
    """Block until SIGINT/SIGTERM, then drain in-flight calls and close."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting_down")
    await running.stop()
