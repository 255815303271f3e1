"""Inference budgets per agreement: rate, volume, per-subject and per-cohort limits.

The gateway charges every allowed request against counters in a :class:`BudgetStore` before
anything is dispatched; a request that would go over a limit is refused whole
(``RESOURCE_EXHAUSTED`` with google.rpc.QuotaFailure) and charges nothing, and a store that
cannot be reached fails closed (``UNAVAILABLE``). The store is SQLite beside the audit database
by default, or PostgreSQL or Redis shared by several replicas (:func:`open_budget_store`).
"""

from gateway.budgets._budgets import Budgets, budget_secret
from gateway.budgets._errors import (
    BudgetExhausted,
    BudgetUnavailable,
    audit_decision,
    quota_violations,
)
from gateway.budgets._open import default_budget_dsn, open_budget_store
from gateway.budgets._sqlite import SqliteBudgetStore
from gateway.budgets._store import DAY, MINUTE, BudgetStore, Charge

__all__ = [
    "BudgetExhausted",
    "BudgetStore",
    "BudgetUnavailable",
    "Budgets",
    "Charge",
    "DAY",
    "MINUTE",
    "SqliteBudgetStore",
    "audit_decision",
    "budget_secret",
    "default_budget_dsn",
    "open_budget_store",
    "quota_violations",
]
