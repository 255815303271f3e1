"""Privacy primitives for pgw: encrypted compute, ECDH-PSI and keyed-hash joins.

Safe recipes with fixed, reviewed parameters (STYLE.md, habit 5); raw TenSEAL and X25519 calls
stay in the private modules. Shared by the gateway, the connectors and the requester SDK.

Encrypted compute (TenSEAL; DESIGN.md "Usable but not visible"):

* requester: :class:`HeKeys` (``ckks()`` / ``bfv()``), sends ``public_material()`` to connectors
  and the gateway, or ``galois_for_sum()`` to the gateway when it must add slots; decrypts
  with :func:`decrypt_vector` / :func:`decrypt_counts`.
* connector and gateway: :meth:`PublicContext.load` (refuses secret keys and foreign parameters),
  :func:`encrypt_column`, :func:`weighted_sum`, :func:`sum_slots`, :func:`encrypt_counts`,
  :func:`add`; :class:`HePool` runs them in spawned worker processes.

Set matching: :func:`prepare` / :func:`respond` / :func:`finish_membership` (and the cardinality
and ``pjc_*`` intersection-sum variants) over :class:`PsiKey` and :func:`hash_to_point`, with
:class:`PsiPool` for large sets; :class:`KeyedJob`, :func:`hmac_items` and :func:`match` for the
weaker keyed-hash join. Large sets travel packed (concatenated 32-byte values): the
:class:`PsiKey` ``*_packed`` / ``submit_*`` methods, :func:`hmac_packed`, :func:`match_packed`,
:func:`has_repeats` and :func:`shuffle_packed` work on such buffers without per-item objects,
and :class:`PackedItems` holds equal-width items (ids) in one buffer on their way to a worker.
"""

from gateway.privacy._errors import BelowMinimum, PrivacyError
from gateway.privacy._he import SLOTS, SUM_STEPS, HeKeys, PublicContext, Scheme
from gateway.privacy._he_ops import (
    add,
    decrypt_counts,
    decrypt_vector,
    encrypt_column,
    encrypt_counts,
    masked_total,
    sum_slots,
    weighted_sum,
)
from gateway.privacy._items import PackedItems, split_rows
from gateway.privacy._keyed import KeyedJob, hmac_items, hmac_packed, match
from gateway.privacy._match import has_repeats, match_packed
from gateway.privacy._pool import HePool, PsiPool
from gateway.privacy._psi import PsiKey, hash_to_point, shuffle, shuffle_packed
from gateway.privacy._psi_protocol import (
    PjcReply,
    PsiRequesterState,
    finish_cardinality,
    finish_membership,
    pjc_reblind,
    pjc_respond,
    pjc_total,
    prepare,
    respond,
    respond_cardinality,
)

__all__ = [
    "BelowMinimum",
    "HeKeys",
    "HePool",
    "KeyedJob",
    "PackedItems",
    "PjcReply",
    "PrivacyError",
    "PsiKey",
    "PsiPool",
    "PsiRequesterState",
    "PublicContext",
    "SLOTS",
    "SUM_STEPS",
    "Scheme",
    "add",
    "decrypt_counts",
    "decrypt_vector",
    "encrypt_column",
    "encrypt_counts",
    "finish_cardinality",
    "finish_membership",
    "has_repeats",
    "hash_to_point",
    "hmac_items",
    "hmac_packed",
    "masked_total",
    "match",
    "match_packed",
    "pjc_reblind",
    "pjc_respond",
    "pjc_total",
    "prepare",
    "respond",
    "respond_cardinality",
    "shuffle",
    "shuffle_packed",
    "split_rows",
    "sum_slots",
    "weighted_sum",
]
