"""The conformance battery: what every connector must do, checked over the wire.

:func:`check_connector` talks to a running connector exactly as the gateway does (signed
ReleaseSpecs over gRPC) and returns one :class:`CheckResult` per check. It needs the gateway's
spec signing key (only the hub can make specs a connector trusts) and one agreement for the
partner. ``pgw connector check`` is its command line; connector tests call it in-process.
The checks themselves live in :mod:`connectors.sdk._conformance_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._conformance_batch import batch
from connectors.sdk._conformance_checks import Battery, CheckResult
from connectors.sdk._transforms import TRANSFORMS
from gateway.pb.pgw.v1 import connector_pb2_grpc
from gateway.policy import Agreement

__all__ = ["CheckResult", "check_connector", "render_report"]


def render_report(results: Sequence[CheckResult]) -> str:
    """One line per check, then a summary line."""
    failed = sum(not r.ok for r in results)
    lines = [str(r) for r in results]
    lines.append(f"{len(results) - failed}/{len(results)} checks passed"
                 + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)


async def check_connector(address: str, *, spec_key: Ed25519PrivateKey, agreement: Agreement,
                          subjects: Sequence[str], timeout_s: float = 5.0,
                          channel_factory: Callable[[str], grpc.aio.Channel] | None = None
                          ) -> list[CheckResult]:
    """Run the battery against the connector at ``address``; one result per check.

    ``agreement`` must be one the connector holds (same id, version and hash) and active today;
    ``subjects`` should be GB 11643 ids the partner holds (at most the agreement's limit).
    """
    subjects = list(subjects)[:agreement.limits.max_subjects_per_request]
    channel = (channel_factory or grpc.aio.insecure_channel)(address)
    try:
        battery = Battery(connector_pb2_grpc.ConnectorServiceStub(channel), spec_key,
                          agreement, subjects, timeout_s)
        await battery.describe()
        if not battery.types:
            return battery.results
        if not battery.grants:
            battery.record("agreement", False, f"{agreement.label} grants no plain release")
            return battery.results
        for step in (battery.valid, battery.undeclared, battery.transforms, battery.signatures,
                     battery.expiry, battery.widened, battery.malformed, battery.deadline):
            await step()
        await batch(battery)
        return battery.results
    finally:
        await channel.close()


def pick_agreement(agreements: Sequence[Agreement], partner: str, today: Any) -> Agreement:
    """The first (by id) agreement for ``partner`` active ``today`` with a plain release."""
    for a in sorted(agreements, key=lambda a: a.id):
        if a.partner == partner and a.active(today) and any(
                g.transform in TRANSFORMS and TRANSFORMS[g.transform].releasable
                for g in a.fields):
            return a
    raise LookupError(f"no active agreement for partner {partner!r} grants a plain release")
