"""Transport security: a development PKI and the gRPC credentials built from it.

``pgw pki init`` makes, under ``DIR/pki/``, a development CA (EC P-256), one certificate for
the gateway (client *and* server: it dials the connectors and may serve requesters over TLS)
and one server certificate per connector (SAN 127.0.0.1, localhost and the connector's host).

Between gateway and connectors it is mutual TLS: a connector requires a client certificate
signed by the CA *and* (:class:`GatewayOnly`) that the certificate is the gateway's, by SHA-256
fingerprint; any other CA-signed certificate (a connector's own, say) is refused with
UNAUTHENTICATED. TLS is off unless the config has a ``[tls]`` section.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ConfigError
from gateway.logs import get_logger

if TYPE_CHECKING:
    from gateway.config import ConnectorConfig, TlsConfig

log = get_logger("pgw.pki")
GATEWAY_CN = "pgw-gateway"
CA_CN = "pgw development CA"
VALID_DAYS = 365
Clock = Callable[[], datetime.datetime]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert)
        key_path.touch(mode=0o600, exist_ok=True)
        key_path.chmod(0o600)
        key_path.write_bytes(self.key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pgw"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = CA_CN, *, days: int = VALID_DAYS, clock: Clock = _now) -> Issued:
    """A self-signed EC P-256 CA, allowed to sign end-entity certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock()
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # ordered, no repeats
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(ca: Issued, cn: str, hosts: Iterable[str], *, client: bool, server: bool,
          days: int = VALID_DAYS, clock: Clock = _now) -> Issued:
    """An EC P-256 end-entity certificate signed by ``ca`` for ``hosts`` (the SAN)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + \
             ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    now = clock()
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(_san(["127.0.0.1", "localhost", *hosts]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def host_of(address: str) -> str:
    """``host:port`` (or ``[v6]:port``) to host."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


def init_pki(directory: Path, connectors: Mapping[str, str], *,
             gateway_hosts: Iterable[str] = (), clock: Clock = _now) -> dict[str, Path]:
    """Write a fresh development CA, the gateway's certificate and one per connector
    (``connectors``: partner to the address it listens on) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(clock=clock)
    ca.write(directory / "ca.pem", directory / "ca.key")
    written = {"ca": directory / "ca.pem"}
    issue(ca, GATEWAY_CN, gateway_hosts, client=True, server=True, clock=clock).write(
        directory / "gateway.pem", directory / "gateway.key")
    written["gateway"] = directory / "gateway.pem"
    for partner, address in sorted(connectors.items()):
        issue(ca, f"{partner}.connector.pgw", [host_of(address)], client=False, server=True,
              clock=clock).write(directory / f"{partner}.pem", directory / f"{partner}.key")
        written[partner] = directory / f"{partner}.pem"
    return written


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 over the certificate's DER, hex."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------- gRPC credentials


def server_credentials(cert: bytes, key: bytes, ca: bytes | None = None, *,
                       require_client_auth: bool) -> grpc.ServerCredentials:
    """TLS for a listening port; ``ca`` + ``require_client_auth``: mutual TLS."""
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=require_client_auth)


def channel_credentials(ca: bytes, key: bytes | None = None,
                        cert: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS for a dialling channel, trusting ``ca`` only; with key+cert it presents them."""
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                        certificate_chain=cert)


class GatewayOnly(grpc.aio.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) every call whose TLS peer certificate is not one of
    ``allowed`` (SHA-256 fingerprints): a CA-signed certificate is necessary, not sufficient."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(allowed)

    def _admit(self, context: Any) -> str | None:
        """None when admitted, else the reason (for the log; outward text stays generic)."""
        certs = context.auth_context().get("x509_pem_cert") or []
        if not certs:
            return "no client certificate"
        got = fingerprint(certs[0])
        if got in self._allowed:
            return None
        return f"client certificate {got[:16]} is not the gateway's"

    async def _refuse(self, context: Any, reason: str) -> None:
        log.warning("connector_peer_refused", reason=reason, peer=context.peer())
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "peer not authorised")

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                wrapped = self._wrap(behavior)
                return getattr(grpc, f"{kind}_rpc_method_handler")(
                    wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
        return handler

    def _wrap(self, behavior: Any) -> Any:
        if inspect.isasyncgenfunction(behavior):
            async def stream(request: Any, context: Any) -> Any:
                reason = self._admit(context)
                if reason is not None:
                    await self._refuse(context, reason)
                async for item in behavior(request, context):
                    yield item
            return stream

        async def call(request: Any, context: Any) -> Any:
            reason = self._admit(context)
            if reason is not None:
                await self._refuse(context, reason)
            return await behavior(request, context)
        return call


# --------------------------------------------------------------------------- from the config


def _read(path: Path | None, what: str) -> bytes:
    try:
        if path is None:
            raise FileNotFoundError(what)
        return path.read_bytes()
    except OSError:
        raise ConfigError(f"[tls] {what}: cannot read {path}; run `pgw pki init --config FILE`"
                          ) from None


def gateway_channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """The gateway dialling connectors: trusts the CA, presents its own certificate."""
    return channel_credentials(_read(tls.ca, "ca"), _read(tls.gateway_key, "gateway_key"),
                               _read(tls.gateway_cert, "gateway_cert"))


def requester_server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """The public port over TLS (``requester_tls``): no client certificate asked for."""
    return server_credentials(_read(tls.gateway_cert, "gateway_cert"),
                              _read(tls.gateway_key, "gateway_key"), require_client_auth=False)


def connector_tls(tls: TlsConfig,
                  connector: ConnectorConfig) -> tuple[grpc.ServerCredentials, GatewayOnly]:
    """A connector's mutual-TLS port credentials and the interceptor admitting the gateway only."""
    ca = _read(tls.ca, "ca")
    creds = server_credentials(_read(connector.tls_cert, f"{connector.partner} tls_cert"),
                               _read(connector.tls_key, f"{connector.partner} tls_key"), ca,
                               require_client_auth=True)
    return creds, GatewayOnly([fingerprint(_read(tls.gateway_cert, "gateway_cert"))])
