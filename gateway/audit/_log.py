"""The audit log: durable group commit over an :class:`AuditStore`, a Merkle tree, checkpoints.

``await log.append(entry)`` enqueues the entry and waits. One writer task drains everything
queued (up to ``max_batch`` entries and ``MAX_BATCH_BYTES``), commits it with ONE
``store.append_batch`` in a worker thread, extends the in-memory :class:`MerkleTree`, signs a
checkpoint over the new size and stores it, and only then resolves the waiters. So an
acknowledged entry is durable *and* covered by a stored, signed checkpoint; concurrent appends
share one durable commit (group commit).

Checkpoint policy: one checkpoint per committed batch (one Ed25519 signature and one small row),
so every :class:`AppendResult` carries a note that covers its entry.

Subject sets: ``append(entry, subject_set=blob)`` hands a bulk entry's pseudonyms (see
:mod:`gateway.audit._subject_set`) to the same batch, written in the batch's one transaction;
the tree hashes the entry alone (its digest binds the set). Acknowledged once both are durable.

Failure: if the store raises, every waiter of that batch gets :class:`AuditUnavailable` and
the tree is not extended. The tree is re-synchronised from the store on the next batch: the
index ``append_batch`` returns is the truth, and entries between the tree's size and it
(another replica's, or a commit whose acknowledgement was lost) are read back and hashed
first. A failed append is *not acknowledged*; it may still be in the log (as any commit whose
reply was lost), but the gateway has released nothing for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from gateway.audit._checkpoint import Checkpoint
from gateway.audit._hasher import Hasher, get_hasher
from gateway.audit._note import NoteSigner, sign_note
from gateway.audit._store import AuditStore, iter_entries, open_store
from gateway.audit._tree import MerkleTree
from gateway.errors import AuditUnavailable

__all__ = ["AppendResult", "AuditLog"]

#: (entry or None to catch up without appending, its subject set or None, the waiter's future)
_Waiter = tuple[bytes | None, bytes | None, "asyncio.Future[AppendResult]"]
#: Most bytes of entries and subject sets committed in one batch (one waiter always goes).
MAX_BATCH_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class AppendResult:
    """An acknowledged append: the entry's index and the signed checkpoint that covers it."""

    index: int
    size: int
    checkpoint_note: str


class AuditLog:
    """Append-only, signed, durable audit log with group commit. Build it with :meth:`open`."""

    def __init__(self, store: AuditStore, tree: MerkleTree, origin: str, signer: NoteSigner,
                 *, max_batch: int, latest: tuple[int, str] | None) -> None:
        self._store, self._tree, self._origin, self._signer = store, tree, origin, signer
        self._max_batch = max_batch
        self._latest = latest
        self._pending: deque[_Waiter] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._writer = asyncio.create_task(self._run(), name="audit-log-writer")

    @classmethod
    async def open(cls, dsn: str | AuditStore, hash_name: str, origin: str, signer: NoteSigner,
                   *, max_batch: int = 1000) -> AuditLog:
        """Open (creating if needed) the log at ``dsn`` and rebuild its tree from the entries.

        ``dsn`` may also be an already open store (the seam for fault-injection tests). Raises
        ConfigError if the store was created with another hash or origin, and AuditUnavailable
        if the latest stored checkpoint does not match the recomputed root.
        """
        if max_batch < 1:
            raise ValueError(f"max_batch: got {max_batch}, want >= 1")
        hasher = get_hasher(hash_name)
        store, tree, latest = await asyncio.to_thread(_load, dsn, hasher, origin)
        log = cls(store, tree, origin, signer, max_batch=max_batch, latest=latest)
        if tree.size and (latest is None or latest[0] != tree.size):
            # A batch committed before a crash but never acknowledged: cover it with a
            # checkpoint now, so the stored log is fully signed again.
            await log.refresh()
        return log

    @property
    def size(self) -> int:
        """Entries in this replica's tree (others may have appended more; see :meth:`refresh`)."""
        return self._tree.size

    @property
    def hasher(self) -> Hasher:
        return self._tree.hasher

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def store(self) -> AuditStore:
        """The underlying store, for read-only use (search, export)."""
        return self._store

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """``(size, note)`` of the newest checkpoint this log signed or found at open."""
        return self._latest

    @property
    def queue_depth(self) -> int:
        """Appends (and refreshes) queued for the writer and not yet committed."""
        return len(self._pending)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._tree.consistency_proof(old_size, new_size)

    async def append(self, entry: bytes, subject_set: bytes | None = None) -> AppendResult:
        """Append one encoded entry, and the subject set its digest names if it has one;
        return once both are durable and the entry is covered by a checkpoint."""
        if not isinstance(entry, bytes):
            raise TypeError(f"audit entry: got {type(entry).__name__}, want bytes")
        if subject_set is not None and not isinstance(subject_set, bytes):
            raise TypeError(f"subject set: got {type(subject_set).__name__}, want bytes")
        return await self._enqueue(entry, subject_set)

    async def refresh(self) -> int:
        """Catch the tree up with entries other replicas appended; return the new size."""
        return (await self._enqueue(None)).size

    async def _enqueue(self, entry: bytes | None, subject_set: bytes | None = None
                       ) -> AppendResult:
        if self._closing:
            raise AuditUnavailable("audit log is closed")
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, subject_set, future))
        self._wakeup.set()
        return await future

    async def aclose(self) -> None:
        """Stop taking appends, commit everything already queued, close the store."""
        if not self._closing:
            self._closing = True
            self._wakeup.set()
            await self._writer
            await asyncio.to_thread(self._store.close)
        else:
            await asyncio.shield(self._writer)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._commit(self._next_batch())
            if self._closing:
                return

    def _next_batch(self) -> list[_Waiter]:
        """The oldest waiters, up to ``max_batch`` and :data:`MAX_BATCH_BYTES` (at least one): bulk
        computes (32 MiB of set each at 2^20) commit a few at a time, not all in one."""
        batch: list[_Waiter] = []
        total = 0
        while self._pending and len(batch) < self._max_batch:
            entry, subject_set, _ = self._pending[0]
            total += len(entry or b"") + len(subject_set or b"")
            if batch and total > MAX_BATCH_BYTES:
                break
            batch.append(self._pending.popleft())
        return batch

    async def _commit(self, batch: list[_Waiter]) -> None:
        entries = [entry for entry, _, _ in batch if entry is not None]
        sets = {offset: blob for offset, blob in enumerate(
            blob for entry, blob, _ in batch if entry is not None) if blob is not None}
        try:
            first, size, note = await asyncio.to_thread(self._write, entries, sets)
            self._latest = (size, note)
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    error = AuditUnavailable(f"audit batch of {len(entries)} entries not "
                                             f"acknowledged: {type(exc).__name__}: {exc}")
                    error.__cause__ = exc
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        index = first
        for entry, _, future in batch:
            if not future.done():
                future.set_result(AppendResult(index if entry is not None else -1, size, note))
            index += entry is not None

    def _write(self, entries: list[bytes], sets: dict[int, bytes]) -> tuple[int, int, str]:
        """Worker thread, one hand-off per batch: commit the batch (and its subject sets, keyed
        by offset in ``entries``), read back any gap, extend the tree, sign and store a
        checkpoint over the new size. Returns (first index, size, checkpoint note).

        The tree is only mutated here, while the writer task waits for this call; readers on
        the event loop may read it meanwhile (MerkleTree stores nodes before its size grows).
        """
        # without sets, the one-argument call every AuditStore (and test double) has always had
        first = (self._store.append_batch(entries, sets) if sets
                 else self._store.append_batch(entries))
        base = self._tree.size
        if first < base:
            raise AuditUnavailable(f"audit store returned first index {first}, below the "
                                   f"tree size {base}: the store went backwards")
        gap = self._store.read(base, first) if first > base else []
        leaf = self._tree.hasher.leaf
        self._tree.extend([leaf(entry) for entry in gap] + [leaf(entry) for entry in entries])
        size = self._tree.size
        if size != first + len(entries):
            raise AuditUnavailable(f"tree size {size} after the batch: want {first}+"
                                   f"{len(entries)}; store and tree disagree")
        latest = self._latest
        if latest is not None and latest[0] == size:
            return first, size, latest[1]
        note = sign_note(Checkpoint(self._origin, size, self._tree.root()).body(), [self._signer])
        self._store.save_checkpoint(size, note)
        return first, size, note


def _load(dsn: str | AuditStore, hasher: Hasher,
          origin: str) -> tuple[AuditStore, MerkleTree, tuple[int, str] | None]:
    """Worker thread: open the store, fix/check its profile, rebuild the tree, check it."""
    store = open_store(dsn) if isinstance(dsn, str) else dsn
    try:
        store.create(hasher.name, origin)
        tree = MerkleTree(hasher)
        tree.extend(hasher.leaf(entry) for _, entry in iter_entries(store))
        latest = store.latest_checkpoint()
        if latest is not None and latest[0] > tree.size:
            # Another replica appended (and signed) after the walk above: catch up to it.
            tree.extend(hasher.leaf(entry)
                        for _, entry in iter_entries(store, tree.size, latest[0]))
        if latest is not None:
            size, note = latest
            body = Checkpoint(origin, size, tree.root(size)).body() if size <= tree.size else ""
            if not body or not note.startswith(body):
                raise AuditUnavailable(f"the stored checkpoint at size {size} does not match the "
                                       "root recomputed from the entries: refusing to open")
    except BaseException:
        store.close()
        raise
    return store, tree, latest
