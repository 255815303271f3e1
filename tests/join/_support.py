"""Helpers for the join tests (registered by conftest.py as ``pgw_join_support``)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from gateway.client import JoinClient
from gateway.validate import person_id_check_char

HPF = "hpf-changzhou"
JOIN_LIMIT = 20_000


def widen_join_limit(policies: Path, limit: int) -> None:
    """Set hpf-fraud-ss's limits.max_subjects_per_request (the join bound) in a policy copy."""
    path = policies / "agreements" / "hpf-fraud-ss.yaml"
    text = path.read_text(encoding="utf-8")
    new = re.sub(r"max_subjects_per_request: \d+", f"max_subjects_per_request: {limit}", text)
    path.write_text(new, encoding="utf-8")


def fresh_ids(n: int, seed: int) -> list[str]:
    """Valid GB 11643 ids that the synthetic data does not hold (region 999999)."""
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        first = f"999999{rng.randint(1950, 2000)}{rng.randint(1, 12):02d}" \
                f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
        out.add(first + person_id_check_char(first))
    return sorted(out)



def sample(active: dict[str, float], people: dict[str, Any], n: int, overlap: float,
           seed: int) -> tuple[list[str], set[str]]:
    """n requester ids of which ``overlap`` are in the active set, and the true matches."""
    rng = random.Random(seed)
    k = round(n * overlap)
    inside = rng.sample(sorted(active), k)
    inactive = sorted(p for p in people if p not in active)
    outside = rng.sample(inactive, min(len(inactive), (n - k) // 2))
    outside += fresh_ids(n - k - len(outside), seed)
    items = inside + outside
    rng.shuffle(items)
    return items, set(inside)


async def join(address: str, token: str, mode: str, output: str, items: list[str],
               purpose: str = "fraud-detection", **kw: Any) -> Any:
    async with JoinClient(address, token) as client:
        return await client.join("social-security", purpose, mode, output, items, **kw)
