"""AuditLog group commit on both backends: density, durability, failure, replicas, kill -9."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.audit._checkpoint import Checkpoint
from gateway.audit._entry import AuditEntry
from gateway.audit._hasher import get_hasher
from gateway.audit._log import AppendResult, AuditLog
from gateway.audit._note import NoteSigner, open_note
from gateway.audit._store import open_store
from gateway.audit._verify import verify_consistency, verify_inclusion
from gateway.errors import AuditUnavailable, ConfigError

ORIGIN = "pgw.test/audit"
CRASH_SCRIPT = Path(__file__).with_name("_crash_writer.py")


def _load_crash_writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgw_audit_crash_writer", CRASH_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crash_writer = _load_crash_writer()


def _entry(n: int) -> bytes:
    return crash_writer.make_entry(0, 0, n)  # type: ignore[no-any-return]


def _checked_root(note: str, signer: NoteSigner, size: int) -> bytes:
    """Verify a checkpoint note's signature and size; return its root."""
    opened = open_note(note, [signer.verifier()])
    checkpoint = Checkpoint.parse(opened.body)
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, size)
    return checkpoint.root


class FlakyStore:
    """Fault double around a real store: fails append or checkpoint on demand."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.append_fault: str | None = None  # "before" or "after" the real commit
        self.checkpoint_fault = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def append_batch(self, entries: list[bytes], subject_sets: Any = None) -> int:
        if self.append_fault == "before":
            raise OSError("injected: connection reset before commit")
        first = self.inner.append_batch(entries, subject_sets)
        if self.append_fault == "after":
            raise OSError("injected: acknowledgement lost after commit")
        return int(first)

    def save_checkpoint(self, size: int, note_text: str) -> None:
        if self.checkpoint_fault:
            raise OSError("injected: checkpoint write failed")
        self.inner.save_checkpoint(size, note_text)


def test_500_concurrent_appends_share_commits_and_get_dense_indexes(
        store_target: Any, signer: NoteSigner, recompute_root: Any) -> None:
    hasher = get_hasher("sha256")

    async def scenario() -> list[AppendResult]:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer, max_batch=128)
        try:
            results = await asyncio.gather(*(log.append(_entry(n)) for n in range(500)))
            for n, r in enumerate(results):  # each ack's own checkpoint proves its entry
                root = _checked_root(r.checkpoint_note, signer, r.size)
                verify_inclusion(hasher, r.index, r.size, hasher.leaf(_entry(n)),
                                 log.inclusion_proof(r.index, r.size), root)
            return results
        finally:
            await log.aclose()

    results = asyncio.run(scenario())
    assert sorted(r.index for r in results) == list(range(500))
    assert len({r.size for r in results}) < 50  # commits were shared (group commit)
    size, root = recompute_root(store_target.dsn)
    assert size == 500
    assert _checked_root(results[-1].checkpoint_note, signer, 500) == root


def test_reopen_rebuilds_the_same_tree(store_target: Any, signer: NoteSigner) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sm3", ORIGIN, signer)
        await asyncio.gather(*(log.append(_entry(n)) for n in range(40)))
        root, latest = log.root(), log.latest_checkpoint()
        await log.aclose()
        again = await AuditLog.open(store_target.dsn, "sm3", ORIGIN, signer)
        try:
            assert (again.size, again.root(), again.latest_checkpoint()) == (40, root, latest)
            hasher = get_hasher("sm3")
            verify_inclusion(hasher, 7, 40, hasher.leaf(_entry(7)),
                             again.inclusion_proof(7, 40), root)
            result = await again.append(_entry(40))
            assert result.index == 40
            verify_consistency(hasher, 40, 41, again.consistency_proof(40, 41), root,
                               _checked_root(result.checkpoint_note, signer, 41))
        finally:
            await again.aclose()

    asyncio.run(scenario())


def test_reopen_with_another_hash_is_refused(store_target: Any, signer: NoteSigner) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        await log.append(_entry(0))
        await log.aclose()
        with pytest.raises(ConfigError, match="hash profile mismatch"):
            await AuditLog.open(store_target.dsn, "sm3", ORIGIN, signer)

    asyncio.run(scenario())


def test_tampered_store_is_refused_at_open(store_target: Any, signer: NoteSigner) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        await asyncio.gather(*(log.append(_entry(n)) for n in range(5)))
        await log.aclose()
        changed = ("CAST(entry || 'x' AS BLOB)" if store_target.kind == "sqlite"
                   else "entry || 'x'::bytea")
        store_target.execute(f"UPDATE audit_entries SET entry = {changed} WHERE idx = 2;")
        with pytest.raises(AuditUnavailable, match="does not match"):
            await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)

    asyncio.run(scenario())


@pytest.mark.parametrize("fault", ["before", "after"])
def test_store_failure_fails_the_batch_and_the_log_resyncs(
        store_target: Any, signer: NoteSigner, recompute_root: Any, fault: str) -> None:
    async def scenario() -> None:
        store = FlakyStore(open_store(store_target.dsn))
        log = await AuditLog.open(store, "sha256", ORIGIN, signer)  # type: ignore[arg-type]
        try:
            await asyncio.gather(*(log.append(_entry(n)) for n in range(10)))
            store.append_fault = fault
            failed = await asyncio.gather(*(log.append(_entry(n)) for n in range(10, 20)),
                                          return_exceptions=True)
            assert all(isinstance(f, AuditUnavailable) for f in failed)
            assert log.size == 10  # the tree was not extended
            store.append_fault = None
            result = await log.append(_entry(99))
            # "before": nothing was written; "after": the unacknowledged batch is in the store
            # and the tree re-synchronised from it before taking the new entry.
            assert result.index == (10 if fault == "before" else 20)
            assert log.size == result.size == result.index + 1
            assert (log.size, log.root()) == recompute_root(store_target.dsn)
        finally:
            await log.aclose()

    asyncio.run(scenario())


def test_real_mid_batch_fault_fails_every_waiter(
        store_target: Any, signer: NoteSigner, recompute_root: Any) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        try:
            await log.append(_entry(0))
            store_target.inject_insert_fault(5)
            failed = await asyncio.gather(*(log.append(_entry(n)) for n in range(1, 20)),
                                          return_exceptions=True)
            assert all(isinstance(f, AuditUnavailable) for f in failed)
            assert recompute_root(store_target.dsn)[0] == log.size == 1
            store_target.clear_fault()
            assert (await log.append(_entry(1))).index == 1
            assert (log.size, log.root()) == recompute_root(store_target.dsn)
        finally:
            await log.aclose()

    asyncio.run(scenario())


def test_checkpoint_failure_is_not_acknowledged_but_next_batch_covers_it(
        store_target: Any, signer: NoteSigner) -> None:
    async def scenario() -> None:
        store = FlakyStore(open_store(store_target.dsn))
        log = await AuditLog.open(store, "sha256", ORIGIN, signer)  # type: ignore[arg-type]
        try:
            store.checkpoint_fault = True
            with pytest.raises(AuditUnavailable):
                await log.append(_entry(0))
            store.checkpoint_fault = False
            result = await log.append(_entry(1))
            assert (result.index, result.size) == (1, 2)
            assert store.latest_checkpoint() == (2, result.checkpoint_note)
        finally:
            await log.aclose()

    asyncio.run(scenario())


def test_aclose_drains_pending_appends(store_target: Any, signer: NoteSigner) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer, max_batch=16)
        tasks = [asyncio.create_task(log.append(_entry(n))) for n in range(100)]
        await asyncio.sleep(0)  # let every task enqueue
        await log.aclose()
        assert all(t.done() for t in tasks)
        assert sorted(t.result().index for t in tasks) == list(range(100))
        with pytest.raises(AuditUnavailable, match="closed"):
            await log.append(_entry(100))
        with pytest.raises(TypeError):
            await log.append("not bytes")  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_two_replicas_on_one_store_make_one_dense_log(
        store_target: Any, signer: NoteSigner, recompute_root: Any) -> None:
    other = NoteSigner.generate("pgw.test-replica-b")

    async def scenario() -> None:
        a = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer, max_batch=32)
        b = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, other, max_batch=32)
        try:
            results = []
            for wave in range(10):  # waves, so both replicas commit in every stretch of the log
                jobs = [(a if n % 2 else b).append(_entry(n))
                        for n in range(wave * 60, wave * 60 + 60)]
                results += await asyncio.gather(*jobs)
            assert sorted(r.index for r in results) == list(range(600))
            from_a = [r.index for r in results[1::2]]
            from_b = [r.index for r in results[::2]]
            assert min(from_a) < max(from_b) and min(from_b) < max(from_a)  # interleaved
            await a.refresh()
            await b.refresh()
            size, root = recompute_root(store_target.dsn)
            assert size == a.size == b.size == 600
            assert a.root() == b.root() == root
            for log, key in ((a, signer), (b, other)):  # each replica's checkpoints are right
                checkpoint_size, note = log.latest_checkpoint() or (0, "")
                assert _checked_root(note, key, checkpoint_size) == a.root(checkpoint_size)
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


@pytest.mark.slow
def test_acknowledged_entries_survive_kill_9(store_target: Any, recompute_root: Any) -> None:
    rng = random.Random(9162)
    kills, acked = 50, []
    started = time.monotonic()
    for run in range(kills):
        proc = subprocess.Popen(
            [sys.executable, str(CRASH_SCRIPT), store_target.dsn, "sha256", "32", str(run)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        if rng.random() < 0.2:  # sometimes during start-up, rebuild or the first commit
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # usually under load, shortly after the first acknowledgement
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "crash writer never acknowledged an append"
            time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
        lines = out.decode().split("\n")[:-1]  # a torn last line was never acknowledged
        acked.extend(int(line) for line in lines)
    assert len(acked) == len(set(acked)) > kills  # no index acknowledged twice
    assert time.monotonic() - started < 60

    store = open_store(store_target.dsn)
    try:
        size = store.size()
        for _, entry in ((i, e) for i, e in enumerate(store.read(0, size))):
            AuditEntry.decode(entry)
        checkpoint_size, note = store.latest_checkpoint() or (0, "")
    finally:
        store.close()
    assert max(acked) < checkpoint_size <= size  # every ack is covered by the latest checkpoint
    hasher = get_hasher("sha256")
    full_size, _ = recompute_root(store_target.dsn)
    assert full_size == size

    async def reopen() -> None:  # opening re-checks the checkpoint against the entries
        log = await AuditLog.open(store_target.dsn, "sha256", crash_writer.ORIGIN,
                                  crash_writer.crash_signer())
        try:
            opened = open_note(note, [crash_writer.crash_signer().verifier()])
            assert Checkpoint.parse(opened.body).root == log.root(checkpoint_size)
            assert hasher.leaf(store_entry(log, acked[-1])) == log._tree.leaf_hash(acked[-1])
            assert (await log.append(_entry(0))).index == size
        finally:
            await log.aclose()

    asyncio.run(reopen())


def store_entry(log: AuditLog, index: int) -> bytes:
    return log.store.read(index, index + 1)[0]
