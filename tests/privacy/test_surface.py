"""The public surface of gateway.privacy: a sorted, deliberate ``__all__``."""

from __future__ import annotations

import gateway.privacy as privacy

EXPECTED = [
    "BelowMinimum", "HeKeys", "HePool", "KeyedJob", "PackedItems", "PjcReply", "PrivacyError",
    "PsiKey", "PsiPool", "PsiRequesterState", "PublicContext", "SLOTS", "SUM_STEPS", "Scheme",
    "add",
    "decrypt_counts", "decrypt_vector", "encrypt_column", "encrypt_counts", "finish_cardinality",
    "finish_membership", "has_repeats", "hash_to_point", "hmac_items", "hmac_packed",
    "masked_total", "match", "match_packed", "pjc_reblind", "pjc_respond", "pjc_total",
    "prepare", "respond", "respond_cardinality", "shuffle", "shuffle_packed", "split_rows",
    "sum_slots",
    "weighted_sum",
]


def test_public_surface() -> None:
    assert privacy.__all__ == EXPECTED == sorted(EXPECTED)
    assert all(hasattr(privacy, name) for name in EXPECTED)
