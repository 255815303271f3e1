"""Synthetic data for plug-in partners: the same people, rows from each plug-in's own hook.

The built-in partners are written by :func:`connectors.datagen.generate`; any other installed
plug-in with a ``synthesize`` hook gets its rows here, drawn for the same population (same
seed, same people) from a random stream of its own, so adding a partner changes no other
partner's data.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from connectors.datagen._people import make_people
from connectors.datagen._writer import PARTNERS, Progress, _write
from connectors.sdk._plugin import ConnectorPlugin

_BATCH = 10_000


def _batches(rows: Iterable[tuple[object, ...]], width: int, partner: str
             ) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"{partner}: synthesize gave a row of {len(row)} values, want "
                             f"{width} (person_id and one per schema field)")
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def write_plugin_data(plugin: ConnectorPlugin, out_dir: Path, *, seed: int, people: int,
                      progress: Progress | None = None) -> Path:
    """Write ``plugin``'s synthetic rows for the standard population into ``out_dir``."""
    if plugin.synthesize is None:
        raise ValueError(f"connector plugin {plugin.partner!r} has no synthesize hook")
    report: Progress = progress or (lambda stage, done, total: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    population = make_people(random.Random(f"{seed}/people"), people)
    rows = list(plugin.synthesize(population, random.Random(f"{seed}/{plugin.partner}")))
    path = out_dir / plugin.database_name
    _write(path, plugin.schema, plugin.table_name,
           _batches(rows, len(plugin.schema.fields) + 1, plugin.partner), len(rows),
           partial(report, plugin.partner))
    return path


def generate_plugin_data(out_dir: Path, *, seed: int, people: int,
                         progress: Progress | None = None) -> dict[str, Path]:
    """Synthetic data for every installed non-built-in plug-in that has a hook."""
    from connectors.registry import plugins

    return {name: write_plugin_data(p, Path(out_dir), seed=seed, people=people,
                                    progress=progress)
            for name, p in plugins().items() if name not in PARTNERS and p.synthesize}
