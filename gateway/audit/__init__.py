"""The audit chain: an RFC 9162 Merkle log of decisions with signed, witnessed checkpoints.

Front door of the pure core (no storage): hashing (:class:`Hasher`), the in-memory tree
(:class:`MerkleTree`), proof generation over any node source, pure proof verification
(:func:`verify_inclusion`, :func:`verify_consistency`), C2SP signed notes, checkpoints
and cosignatures, canonical :class:`AuditEntry` encoding, keyed subject pseudonyms and the
bulk :class:`SubjectSet` stored beside large entries.
"""

from __future__ import annotations

from ._checkpoint import Checkpoint, cosign, verify_cosignatures
from ._entry import AgreementRef, AuditEntry, format_time
from ._hasher import HASHER_NAMES, Hasher, get_hasher
from ._note import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    NoteError,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    SignedNote,
    key_hash,
    open_note,
    sign_note,
)
from ._proof import NodeSource, subtree_root
from ._pseudonyms import pseudonym_blob, subject_pseudonym, subject_pseudonyms
from ._set_items import set_item, subject_set_items
from ._subject_set import INLINE_PSEUDONYMS, SubjectSet, holds_pseudonym
from ._tree import MerkleTree
from ._verify import (
    ProofError,
    compute_root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "AgreementRef",
    "AuditEntry",
    "Checkpoint",
    "HASHER_NAMES",
    "Hasher",
    "INLINE_PSEUDONYMS",
    "MerkleTree",
    "NodeSource",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "SignedNote",
    "SubjectSet",
    "compute_root",
    "cosign",
    "format_time",
    "get_hasher",
    "holds_pseudonym",
    "key_hash",
    "open_note",
    "pseudonym_blob",
    "root_from_inclusion",
    "set_item",
    "sign_note",
    "subject_pseudonym",
    "subject_pseudonyms",
    "subject_set_items",
    "subtree_root",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
]
