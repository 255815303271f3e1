"""Mutual TLS between gateway and connectors, through real servers and sockets.

A connector admits the gateway's client certificate only: no certificate, another CA's, a
CA-signed one that is not the gateway's, or plaintext are all refused; the gateway's own
queries (dispatch, witnessing) keep working over TLS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgw_it_harness import HPF, LoopThread, Stack, metadata, selections_of

from connectors.datagen import load_person_ids
from gateway import pki
from gateway.cli import main
from gateway.config import Config, load_config
from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from gateway.server import start_gateway
from gateway.workdir import init_workdir

PARTNER = "social-security"
REFUSED_AT_HANDSHAKE = grpc.StatusCode.UNAVAILABLE


def describe(address: str, creds: grpc.ChannelCredentials | None) -> grpc.RpcError | None:
    """Call a connector's Describe; the error, or None when it answered."""
    channel = (grpc.insecure_channel(address) if creds is None
               else grpc.secure_channel(address, creds))
    try:
        connector_pb2_grpc.ConnectorServiceStub(channel).Describe(
            connector_pb2.DescribeRequest(), timeout=5)
        return None
    except grpc.RpcError as err:
        return err
    finally:
        channel.close()


def ca_pem(cfg: Config) -> bytes:
    assert cfg.tls is not None
    return cfg.tls.ca.read_bytes()


def ca_of(cfg: Config) -> pki.Issued:
    assert cfg.tls is not None
    return pki.Issued(cfg.tls.ca.read_bytes(), cfg.tls.ca.with_suffix(".key").read_bytes())


def test_query_works_over_mutual_tls(tls_stack: Stack) -> None:
    ids = subjects(tls_stack)
    response = tls_stack.query("loan-eligibility", ids, {PARTNER: ["insured_status"]})
    assert len(response.results) == 3
    assert response.request_id


def subjects(stack: Stack) -> list[str]:
    return load_person_ids(stack.cfg.connector(PARTNER).database)[:3]


def test_gateway_certificate_is_admitted(tls_stack: Stack) -> None:
    tls = tls_stack.cfg.tls
    assert tls is not None
    creds = pki.gateway_channel_credentials(tls)
    assert describe(tls_stack.connector_address(PARTNER), creds) is None


def test_plaintext_client_cannot_talk_to_a_tls_connector(tls_stack: Stack) -> None:
    err = describe(tls_stack.connector_address(PARTNER), None)
    assert err is not None and err.code() == REFUSED_AT_HANDSHAKE


def test_client_without_certificate_is_refused(tls_stack: Stack) -> None:
    creds = pki.channel_credentials(ca_pem(tls_stack.cfg))
    err = describe(tls_stack.connector_address(PARTNER), creds)
    assert err is not None and err.code() == REFUSED_AT_HANDSHAKE


def test_certificate_from_another_ca_is_refused(tls_stack: Stack) -> None:
    other = pki.make_ca("not the pgw CA")
    imposter = pki.issue(other, pki.GATEWAY_CN, [], client=True, server=True)
    creds = pki.channel_credentials(ca_pem(tls_stack.cfg), imposter.key, imposter.cert)
    err = describe(tls_stack.connector_address(PARTNER), creds)
    assert err is not None and err.code() == REFUSED_AT_HANDSHAKE


def test_connector_certificate_used_as_client_is_refused(tls_stack: Stack) -> None:
    """A valid CA-signed certificate, but a connector's, not the gateway's."""
    bank = tls_stack.cfg.connector("bank")
    assert bank.tls_cert is not None and bank.tls_key is not None
    creds = pki.channel_credentials(ca_pem(tls_stack.cfg), bank.tls_key.read_bytes(),
                                    bank.tls_cert.read_bytes())
    err = describe(tls_stack.connector_address(PARTNER), creds)
    # Its certificate is server-only (no clientAuth usage): TLS refuses it at the handshake;
    # a client-capable one is refused by the gateway-only check (the next test).
    assert err is not None and err.code() == REFUSED_AT_HANDSHAKE


@pytest.mark.parametrize("cn", [pki.GATEWAY_CN, "someone-else"])
def test_ca_signed_client_that_is_not_the_gateway_is_unauthenticated(tls_stack: Stack,
                                                                      cn: str) -> None:
    """Passes TLS (CA-signed, clientAuth) yet is refused: even the gateway's CN is not enough,
    the fingerprint must be the configured gateway certificate's."""
    other = pki.issue(ca_of(tls_stack.cfg), cn, [], client=True, server=False)
    cert = x509.load_pem_x509_certificate(other.cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    creds = pki.channel_credentials(ca_pem(tls_stack.cfg), other.key, other.cert)
    address = tls_stack.connector_address(PARTNER)
    err = describe(address, creds)
    assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "gateway" not in (err.details() or "")  # generic outward text
    with grpc.secure_channel(address, creds) as channel:  # every service, health included
        with pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
def tls_requester_gateway(tls_loop: LoopThread, tls_stack: Stack) -> Iterator[int]:
    """A second gateway on the same TLS connectors, its public port over TLS too."""
    tls = tls_stack.cfg.tls
    assert tls is not None
    cfg = dataclasses.replace(tls_stack.cfg, tls=dataclasses.replace(tls, requester_tls=True))
    running = tls_loop.run(start_gateway(cfg, listen="127.0.0.1:0"))
    yield running.port
    tls_loop.run(running.stop(0.5))


def test_requester_tls_on_the_public_port(tls_stack: Stack, tls_requester_gateway: int) -> None:
    address = f"127.0.0.1:{tls_requester_gateway}"
    ids = subjects(tls_stack)
    request = gateway_pb2.QueryRequest(purpose="loan-eligibility", subjects=ids,
                                       selections=selections_of({PARTNER: ["insured_status"]}))
    token = tls_stack.token(HPF)
    with grpc.secure_channel(address, pki.channel_credentials(ca_pem(tls_stack.cfg))) as ch:
        answer = gateway_pb2_grpc.GatewayServiceStub(ch).Query(
            request, metadata=metadata(token), timeout=10)
    assert len(answer.results) == len(ids)
    with grpc.insecure_channel(address) as ch:
        with pytest.raises(grpc.RpcError) as info:
            gateway_pb2_grpc.GatewayServiceStub(ch).Query(request, metadata=metadata(token),
                                                          timeout=5)
    assert info.value.code() == REFUSED_AT_HANDSHAKE


def test_pki_init_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = init_workdir(tmp_path, people=10, seed=1, generate_data=False)
    assert main(["pki", "init", "--config", str(config)]) == 0
    assert "[tls]" in capsys.readouterr().out  # plaintext config: says how to turn TLS on
    pki_dir = tmp_path / "pki"
    ca = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for partner, connector in load_config(config).connectors.items():
        cert = x509.load_pem_x509_certificate((pki_dir / f"{partner}.pem").read_bytes())
        assert cert.issuer == ca.subject
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert pki.host_of(connector.address) in {
            str(a) for a in san.get_values_for_type(x509.IPAddress)}
        assert (pki_dir / f"{partner}.key").stat().st_mode & 0o077 == 0
    assert (pki_dir / "gateway.key").stat().st_mode & 0o077 == 0


def test_tls_section_unknown_key_is_an_error(tmp_path: Path) -> None:
    config = init_workdir(tmp_path, people=10, seed=1, generate_data=False, tls=True)
    config.write_text(config.read_text() + "cert = 'x'\n")  # lands in [tls]
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[tls\] unknown key\(s\): cert"):
        load_config(config)


def test_the_cli_reaches_a_gateway_serving_tls(tls_stack: Stack, tls_requester_gateway: int,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """With `requester_tls = true`, `pgw query` verifies the gateway against [tls] ca."""
    config = tls_stack.cfg.path
    text = config.read_text()
    assert "requester_tls = false" in text
    config.write_text(text.replace("requester_tls = false", "requester_tls = true"))
    try:
        rc = main(["query", "--config", str(config), "--gateway",
                   f"127.0.0.1:{tls_requester_gateway}", "--org", HPF, "--role", "requester",
                   "--purpose", "loan-eligibility", "--subject", subjects(tls_stack)[0],
                   "--field", f"{PARTNER}.insured_status"])
    finally:
        config.write_text(text)
    out = capsys.readouterr().out
    assert rc == 0 and f"{PARTNER}.insured_status" in out


def test_connector_check_dials_a_tls_connector_as_the_gateway(
        tls_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """`pgw connector check` presents the gateway's certificate when the config has [tls] (the
    connector admits no other client: see the tests above)."""
    address = tls_stack.connector_address(PARTNER)
    status = main(["connector", "check", address, "--config", str(tls_stack.cfg.path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS  describe" in out and "PASS  wrongly-signed spec refused" in out
    assert "FAIL" not in out
