"""Choosing and opening a budget store from a DSN (``[budgets] dsn`` in pgw.toml).

* ``sqlite:///abs/path.db`` (or a path): the embedded default, this host's processes only;
* ``postgresql://...`` / ``postgres://...``: shared by every replica on that database;
* ``redis://...`` / ``rediss://...``: shared by every replica on that server.

Without ``[budgets] dsn`` the budgets go where the audit log is: the same PostgreSQL database
when the audit store is PostgreSQL (replicas then share their budgets without more set-up), else
``budgets.db`` beside the SQLite audit database.
"""

from __future__ import annotations

from pathlib import Path

from gateway.budgets._store import BudgetStore
from gateway.errors import ConfigError

__all__ = ["default_budget_dsn", "open_budget_store"]

_PG = ("postgresql://", "postgres://")
_REDIS = ("redis://", "rediss://")


def default_budget_dsn(audit_dsn: str) -> str:
    """Where the budgets live when the configuration does not say: beside the audit log."""
    if audit_dsn.startswith(_PG):
        return audit_dsn
    path = Path(audit_dsn.removeprefix("sqlite://"))  # "sqlite://" + path, or a bare path
    return "sqlite://" + str(path.with_name("budgets.db"))


async def open_budget_store(dsn: str) -> BudgetStore:
    """The store for ``dsn``; raises ConfigError for an unknown form, BudgetUnavailable when
    the server cannot be reached."""
    if dsn.startswith(_PG):
        try:
            from gateway.budgets._postgres import PostgresBudgetStore
        except ImportError:
            raise ConfigError(f"budget store {dsn.split('@')[-1]}: psycopg is not installed; "
                              "pip install 'pgw[postgres]'") from None
        return await PostgresBudgetStore.open(dsn)
    if dsn.startswith(_REDIS):
        from gateway.budgets._redis import RedisBudgetStore

        return await RedisBudgetStore.open(dsn)
    from gateway.budgets._sqlite import SqliteBudgetStore

    if dsn.startswith("sqlite://"):
        path = dsn.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ConfigError(f"budget store DSN {dsn!r}: want sqlite:///absolute/path.db")
        return SqliteBudgetStore(path)
    if "://" in dsn:
        raise ConfigError(f"budget store DSN scheme {dsn.split('://')[0]!r}: want sqlite, "
                          "postgresql or redis")
    return SqliteBudgetStore(dsn)
