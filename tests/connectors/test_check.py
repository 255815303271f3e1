"""``pgw connector check``: the four installed connectors pass it; broken ones fail it with
the right findings. Real servers on loopback ports (STYLE habit 9), a ``pgw init`` workdir."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pytest

from connectors.registry import open_source
from connectors.sdk import (
    CheckResult,
    ConnectorService,
    SourceConfig,
    SpecVerifier,
    check_connector,
    start_connector,
)
from connectors.sdk._conformance import pick_agreement
from connectors.sdk._conformance_batch import NAME
from gateway.cli import main
from gateway.config import PARTNERS, Config, load_config
from gateway.keys import load_private_key, load_public_key, load_secret
from gateway.pb.pgw.v1 import common_pb2, connector_pb2
from gateway.policy import load_policies
from gateway.server import Running, start_partner
from gateway.workdir import init_workdir


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("check")
    init_workdir(root, people=300, seed=20261125)
    return load_config(root / "pgw.toml")


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    lt = Loop()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def running(loop: Loop, cfg: Config) -> Iterator[dict[str, Running]]:
    started = {p: loop.run(start_partner(cfg, p, listen="127.0.0.1:0")) for p in cfg.connectors}
    yield started
    for r in started.values():
        loop.run(r.stop(0))


def test_init_configures_every_installed_partner(cfg: Config) -> None:
    assert tuple(cfg.connectors) == PARTNERS
    assert cfg.connector("real-estate").database.name == "real_estate.db"


@pytest.mark.parametrize("partner", ["social-security", "education", "bank", "real-estate"])
def test_installed_connectors_pass(running: dict[str, Running], cfg: Config, partner: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{running[partner].port}"
    status = main(["connector", "check", address, "--config", str(cfg.path)])
    out = capsys.readouterr().out
    assert status == 0, out
    lines = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) >= 20 and all(line.startswith("PASS") for line in lines), out
    for check in ("describe", "replayed spec refused", "no undeclared field returned",
                  "unsigned spec refused", "wrongly-signed spec refused", "expired spec refused",
                  "widened spec refused", "malformed subject", "deadlines honoured",
                  "transform "):
        assert f"PASS  {check}" in out, check
    assert f"checking {partner} at {address}" in out


def test_check_without_subjects_or_agreement_is_an_error(
        running: dict[str, Running], cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{running['bank'].port}"
    assert main(["connector", "check", address, "--config", str(cfg.path),
                 "--agreement", "hpf-loan-ss"]) == 1
    assert "is for social-security, not bank" in capsys.readouterr().err


# -- deliberately broken connectors -----------------------------------------------------------

class LeaksAField(ConnectorService):
    """Adds the raw card number to every row it answers."""

    def _rows(self, rows: Sequence[Any], pipeline: Any) -> list[connector_pb2.Row]:
        out = super()._rows(rows, pipeline)
        for row in out:
            if row.found:
                row.values.append(common_pb2.FieldValue(
                    partner=self.partner, field="card_number", transform="plain",
                    value=common_pb2.Value(string_value="6222020200000000000")))
        return out


class IgnoresExpiry(SpecVerifier):
    """Checks everything but expiry: it judges each spec at a moment just before it expires."""

    def verify(self, signed: connector_pb2.SignedReleaseSpec) -> connector_pb2.ReleaseSpec:
        spec = connector_pb2.ReleaseSpec.FromString(signed.spec)
        real = self._clock
        self._clock = lambda: (spec.expires_at_ms - 1) / 1000
        try:
            return super().verify(signed)
        finally:
            self._clock = real


class AcceptsAnySubject(ConnectorService):
    """Skips subject validation (answers 'not found' for garbage ids)."""

    async def Fetch(self, request: Any, context: Any) -> Any:
        import connectors.sdk._server as server

        real = server.validate_person_ids
        server.validate_person_ids = lambda ids, field="": list(ids)  # type: ignore[assignment]
        try:
            return await super().Fetch(request, context)
        finally:
            server.validate_person_ids = real


class BatchWithoutChecks(ConnectorService):
    """Checks its Fetch, but answers every FetchBatch item with the first item's answer."""

    async def FetchBatch(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        first = await self.Fetch(request.requests[0], context)
        return connector_pb2.FetchBatchResponse(outcomes=[
            connector_pb2.FetchOutcome(answer=first) for _ in request.requests])


def _check_broken(loop: Loop, cfg: Config, *, cls: type = ConnectorService,
                  verifier_cls: type = SpecVerifier) -> dict[str, CheckResult]:
    ccfg = cfg.connector("bank")
    policies = load_policies(ccfg.policies).for_partner("bank")
    agreement = pick_agreement(policies.agreements, "bank", date.today())

    async def go() -> list[CheckResult]:
        source = open_source("bank", SourceConfig("bank", ccfg.database))
        subjects = [s async for s, _ in source.stream_column("overdue_flag")][:8]
        verifier = verifier_cls([load_public_key(p) for p in ccfg.trusted_gateway_keys])
        service = cls(source, policies, verifier, load_secret(ccfg.pseudonym_secret))
        server, port = await start_connector(service, "127.0.0.1:0")
        try:
            return await check_connector(f"127.0.0.1:{port}", agreement=agreement,
                                         spec_key=load_private_key(cfg.spec_key),
                                         subjects=subjects)
        finally:
            await server.stop(0)
            await source.aclose()

    return {r.name: r for r in loop.run(go())}


def _failed(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if not r.ok}


def test_a_connector_returning_an_undeclared_field_fails(loop: Loop, cfg: Config) -> None:
    results = _check_broken(loop, cfg, cls=LeaksAField)
    failed = _failed(results)
    assert "no undeclared field returned" in failed
    assert "card_number" in results["no undeclared field returned"].detail
    assert "valid spec answered" in failed
    assert {n for n in failed if n.startswith("transform ")} == {
        n for n in results if n.startswith("transform ")}
    assert not any("refused" in n or "rejected" in n for n in failed), failed


def test_a_connector_ignoring_expiry_fails(loop: Loop, cfg: Config) -> None:
    results = _check_broken(loop, cfg, verifier_cls=IgnoresExpiry)
    assert _failed(results) == {"expired spec refused"}
    assert "got OK" in results["expired spec refused"].detail
    assert "values released" in results["expired spec refused"].detail


def test_a_connector_accepting_malformed_subjects_fails(loop: Loop, cfg: Config) -> None:
    results = _check_broken(loop, cfg, cls=AcceptsAnySubject)
    assert _failed(results) == {n for n in results if n.startswith("malformed subject")}
    assert len(_failed(results)) == 4


def test_a_connector_whose_batch_path_skips_the_checks_fails(loop: Loop, cfg: Config) -> None:
    results = _check_broken(loop, cfg, cls=BatchWithoutChecks)
    assert _failed(results) == {NAME}
    detail = results[NAME].detail
    assert "tampered item: got" in detail and "replayed item: got" in detail
    assert "values released" in detail


def test_the_correct_service_passes_the_same_harness(loop: Loop, cfg: Config) -> None:
    results = _check_broken(loop, cfg)
    assert _failed(results) == set()
    assert results[NAME].detail == "valid item answered; tampered and replayed items refused"

