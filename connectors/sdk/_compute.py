"""The connector side of encrypted compute: ``PartnerComputeService`` (Encrypt, Aggregate).

Built on the partner's :class:`ConnectorService`: the same spec verifier (signature, expiry,
replay), the same own copy of the agreements, the same DataSource. Nothing leaves in the clear:

* ``Encrypt`` reads one field for a list of subjects and returns it CKKS-encrypted under the
  requester's public context, packed 4096 values per ciphertext. A subject the partner does not
  hold (or holds no value for) is encrypted as 0 and flagged in a presence bitmap that the
  requester gets in plain: *whether* the partner holds someone is revealed, never a value.
* ``Aggregate`` selects a cohort by the partner's own attribute (never a list of people from the
  requester), refuses with FAILED_PRECONDITION below the agreement's ``min_k`` (without saying
  how small), and returns the sum, mean or count as one CKKS ciphertext plus the cohort size in
  plain for the gateway to re-check.

TenSEAL objects are not thread-safe: small jobs run in one worker thread with a context loaded
there, large ones in a shared spawn :class:`HePool` whose workers each load their own context.

This module is the front door; the work lives in private modules:

* ``_compute_he`` -- encryption off the event loop, the HE pool, spec digests, presence bitmap;
* ``_compute_cohorts`` -- cohort reads (``CohortSource`` and its SQLite implementation);
* ``_compute_service`` -- the gRPC service and its registration.
"""

from __future__ import annotations

from connectors.sdk._compute_cohorts import CohortSource, SqliteCohortSource, cohort_source_for
from connectors.sdk._compute_he import (
    BATCH,
    INLINE_CHUNKS,
    close_shared_pool,
    context_digest,
    encrypt_chunks,
    pack_presence,
    shared_pool,
    subjects_digest,
    unpack_presence,
)
from connectors.sdk._compute_service import (
    MAX_SUBJECTS,
    PartnerComputeService,
    add_compute_service,
)

__all__ = [
    "BATCH",
    "INLINE_CHUNKS",
    "MAX_SUBJECTS",
    "CohortSource",
    "PartnerComputeService",
    "SqliteCohortSource",
    "add_compute_service",
    "close_shared_pool",
    "cohort_source_for",
    "context_digest",
    "encrypt_chunks",
    "pack_presence",
    "shared_pool",
    "subjects_digest",
    "unpack_presence",
]
