"""Officer commands (placeholder until the audit CLI lands)."""

from __future__ import annotations

from typing import Any

from gateway.config import Config


def register(sub: Any) -> None:
    return None


def verify_and_report(cfg: Config) -> bool:
    return True
