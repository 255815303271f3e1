"""Test helpers for connector authors (public API, like ``structlog.testing``).

* :func:`synthetic_people`: the standard synthetic population (valid GB 11643 ids);
* :func:`write_synthetic_db`: a plug-in's synthetic rows in a SQLite file, as ``pgw init``
  writes them;
* :func:`check_in_process`: serve a plug-in's DataSource through the real connector server on
  a loopback port and run the conformance battery against it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._conformance import CheckResult, check_connector, pick_agreement
from connectors.sdk._plugin import ConnectorPlugin, SourceConfig, SyntheticPerson
from connectors.sdk._schema import Schema

__all__ = ["check_in_process", "synthetic_people", "write_synthetic_db"]

SEED = 20261125


def synthetic_people(n: int, seed: int = SEED) -> list[SyntheticPerson]:
    """The first ``n`` people of the standard population for ``seed`` (what ``pgw init`` uses)."""
    from connectors.datagen._people import make_people

    return list(make_people(random.Random(f"{seed}/people"), n))


def write_synthetic_db(plugin: ConnectorPlugin, out_dir: Path, *, people: int = 500,
                       seed: int = SEED) -> Path:
    """Write ``plugin``'s synthetic rows for ``people`` people into ``out_dir``; its path."""
    from connectors.datagen._plugins import write_plugin_data

    return write_plugin_data(plugin, Path(out_dir), seed=seed, people=people)


async def check_in_process(plugin: ConnectorPlugin, database: Path, policies: Path, *,
                           agreement_id: str | None = None,
                           subjects: Sequence[str] | None = None,
                           sql: Mapping[str, Any] | None = None,
                           catalogues: Mapping[str, Schema] | None = None) -> list[CheckResult]:
    """Serve ``plugin`` over ``database`` under the agreements in ``policies`` and check it.

    The agreement is ``agreement_id`` or the first active one for the partner; subjects are
    ``subjects`` or the first ten the source streams.
    """
    from connectors.sdk._server import ConnectorService, start_connector
    from connectors.sdk._spec import SpecVerifier
    from gateway.policy import load_policies

    cats = dict(catalogues or {plugin.partner: plugin.schema})
    policy_set = load_policies(policies, cats).for_partner(plugin.partner)
    agreement = (policy_set.agreement(agreement_id) if agreement_id
                 else pick_agreement(policy_set.agreements, plugin.partner, date.today()))
    source = plugin.open_source(SourceConfig(plugin.partner, Path(database), dict(sql or {})))
    try:
        if subjects is None:
            first = plugin.schema.fields[0].name
            subjects = []
            async for subject, _ in source.stream_column(first):
                subjects.append(subject)
                if len(subjects) == 10:
                    break
        key = Ed25519PrivateKey.generate()
        service = ConnectorService(source, policy_set, SpecVerifier([key.public_key()]),
                                   os.urandom(32))
        server, port = await start_connector(service, "127.0.0.1:0")
        try:
            return await check_connector(f"127.0.0.1:{port}", spec_key=key,
                                         agreement=agreement, subjects=subjects)
        finally:
            await server.stop(0)
    finally:
        await source.aclose()
