"""The officer's offline verifier: recompute the log from storage and check every promise.

``verify_store`` walks the stored entries in index order, rebuilding the Merkle tree, and checks:
indexes are dense (a deleted entry is named); each entry decodes canonically; every subject set
is there for the entry whose digest names it, is 32 x count bytes long and hashes to that
digest, and no set is stored for an entry without one (the set is outside the tree, so this
is what catches a set altered after the fact); every stored checkpoint is signed by the log
key, names the right origin and matches the recomputed root at its size (the first one that
does not bounds the first bad index); the latest checkpoint covers the whole log and carries
the required witness cosignatures; and, given an older checkpoint the officer saved (or an
archive: :mod:`gateway.audit._archive`), that the log still extends it (truncation and
rewrites are caught there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.audit._archive import archive_finding
from gateway.audit._checkpoint import Checkpoint, verify_cosignatures
from gateway.audit._entry import AuditEntry, SubjectSet
from gateway.audit._hasher import get_hasher
from gateway.audit._note import NoteError, NoteVerifier, open_note
from gateway.audit._store import AuditStore
from gateway.audit._tree import MerkleTree

CHUNK = 10_000


@dataclass
class Finding:
    """Why verification failed, and the first index that is wrong (when one can be named)."""

    index: int | None
    reason: str

    def __str__(self) -> str:
        where = f"index {self.index}" if self.index is not None else "log"
        return f"{where}: {self.reason}"


@dataclass
class Report:
    size: int = 0
    checkpoints: int = 0
    subject_sets: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None


def _read_all(store: AuditStore, tree: MerkleTree, report: Report) -> None:
    size = store.size()
    expected = 0
    while expected < size:
        upper = min(expected + CHUNK, size)
        rows = store.read_indexed(expected, upper)
        with_sets = set(store.subject_set_indexes(expected, upper))
        for index, data in rows:
            if index != expected:
                raise _Stop(Finding(expected, "entry missing (indexes jump from "
                                    f"{expected - 1} to {index})"))
            try:
                entry = AuditEntry.decode(data)
                if entry.encode() != data:
                    raise ValueError("not canonical")
            except ValueError as exc:
                raise _Stop(Finding(index, f"entry does not decode: {exc}")) from None
            _check_subject_set(store, index, entry.subject_set, index in with_sets, report)
            tree.append(tree.hasher.leaf(data))
            expected += 1
        if not rows:
            raise _Stop(Finding(expected, "entry missing"))
        if with_sets and max(with_sets) >= expected:
            stray = min(i for i in with_sets if i >= expected)
            raise _Stop(Finding(stray, "a subject set is stored for an entry that is missing"))
    stray_sets = store.subject_set_indexes(size, 2**63 - 1)
    if stray_sets:
        raise _Stop(Finding(stray_sets[0], "a subject set is stored past the end of the log"))
    report.size = size


def _check_subject_set(store: AuditStore, index: int, described: SubjectSet | None,
                       stored: bool, report: Report) -> None:
    """The entry's subject set is there and matches its digest, or neither exists. Findings
    name the index and sizes only: never a pseudonym."""
    if described is None:
        if stored:
            raise _Stop(Finding(index, "a subject set is stored for an entry that has none"))
        return
    problem = described.problem(store.read_subject_set(index) if stored else None)
    if problem is not None:
        raise _Stop(Finding(index, problem))
    report.subject_sets += 1


class _Stop(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


def _check_note(note: str, log_key: NoteVerifier, origin: str, tree: MerkleTree,
                lower: int, size: int | None = None) -> Checkpoint:
    """Check one checkpoint note; ``size`` is the size it is stored under (None: --since)."""
    where = None if size is None else max(size - 1, 0)
    label = "checkpoint" if size is None else f"checkpoint of size {size}"
    try:
        opened = open_note(note, [log_key])
    except NoteError as exc:
        raise _Stop(Finding(where, f"{label}: signature: {exc}")) from None
    if log_key.name not in opened.verified_names:
        raise _Stop(Finding(where, f"{label}: not signed by the log key"))
    cp = Checkpoint.parse(opened.body)
    if cp.origin != origin:
        raise _Stop(Finding(where, f"{label}: origin got {cp.origin!r}, want {origin!r}"))
    if size is not None and cp.size != size:
        raise _Stop(Finding(where, f"{label}: the note says size {cp.size}"))
    if cp.size > tree.size:
        raise _Stop(Finding(tree.size, f"checkpoint of size {cp.size} but only {tree.size} "
                            "entries are stored (entries deleted at the tail)"))
    if tree.root(cp.size) != cp.root:
        first = lower if cp.size - lower > 1 else cp.size - 1
        span = "" if cp.size - lower <= 1 else f" (somewhere in [{lower}, {cp.size}))"
        raise _Stop(Finding(first, f"entries do not match the signed checkpoint of size "
                            f"{cp.size}{span}: altered, swapped or inserted"))
    return cp


def verify_store(store: AuditStore, *, log_key: NoteVerifier, origin: str, hash_name: str,
                 witnesses: Sequence[NoteVerifier] = (), quorum: int = 0,
                 since: str | None = None) -> Report:
    """Verify everything; the report's ``finding`` names the first problem (None if all hold)."""
    report = Report()
    tree = MerkleTree(get_hasher(hash_name))
    try:
        _read_all(store, tree, report)
        lower = 0
        sizes = store.checkpoint_sizes()
        for size in sizes:
            note = store.checkpoint_at(size)
            assert note is not None
            _check_note(note, log_key, origin, tree, lower, size)
            lower = size
            report.checkpoints += 1
        if not sizes:
            if tree.size:
                raise _Stop(Finding(0, "no signed checkpoint covers the log"))
            return report
        latest = sizes[-1]
        if latest != tree.size:
            raise _Stop(Finding(latest, f"{tree.size - latest} entries after the latest "
                                "checkpoint are not covered by a signature"))
        if quorum or witnesses:
            note = store.checkpoint_at(latest) or ""
            cosigned = note + "".join(line for _, line in store.cosignatures(latest))
            try:
                report.cosigned_by = verify_cosignatures(cosigned, witnesses, quorum)
            except NoteError as exc:
                raise _Stop(Finding(None, f"latest checkpoint (size {latest}): {exc}")) from None
        if since is not None and since.lstrip().startswith("{"):
            found = archive_finding(since, store)
            if found is not None:
                raise _Stop(Finding(*found))
        elif since is not None:
            _check_since(since, log_key, origin, tree)
    except _Stop as stop:
        report.finding = stop.finding
    return report


def _check_since(note: str, log_key: NoteVerifier, origin: str, tree: MerkleTree) -> None:
    """The log must still extend a checkpoint the officer saved earlier."""
    try:
        _check_note(note, log_key, origin, tree, 0)
    except _Stop as stop:
        old = Checkpoint.parse(open_note(note, [log_key]).body) if stop.finding.index is not None \
            else None
        if old is None:
            raise _Stop(Finding(None, f"--since checkpoint: {stop.finding.reason}")) from None
        if old.size > tree.size:
            raise _Stop(Finding(tree.size, f"the log was truncated: it holds {tree.size} entries, "
                                f"your saved checkpoint covers {old.size}")) from None
        raise _Stop(Finding(None, "the log no longer extends the checkpoint of "
                            f"size {old.size} you saved: entries in [0, {old.size}) were "
                            "rewritten (truncated and re-appended, or altered and re-signed)")
                    ) from None
