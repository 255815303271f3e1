"""The tamper battery: every change an operator with database access could make to a real,
witnessed log is caught by ``pgw audit verify`` (offline), which exits 1 naming the first bad index.

Each test copies the session stack's log (real entries, one signed checkpoint per batch, three
witness cosignatures on the latest) into a fresh store of the same backend, attacks it with raw
SQL outside the product, and runs the CLI in-process against a config pointing at that store.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pgw_officer_harness import (
    OFFICERS,
    Stack,
    append_entries,
    cli,
    entry,
    log_signer,
    write_config,
)

from gateway.audit import NoteSigner, sign_note
from gateway.config import PARTNERS


def verify(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "audit", "verify", "--config", str(config), *extra)


def middle(log) -> int:  # type: ignore[no-untyped-def]
    """An index inside the log with a checkpoint at its own size (so it can be named exactly)."""
    k = log.size // 2
    assert k in log.checkpoint_sizes and k + 1 in log.checkpoint_sizes, log.checkpoint_sizes
    return k


def flip_signature(note: str, which: int = 0) -> str:
    """Flip one bit inside the Ed25519 signature (not the key id) of signature line ``which``."""
    body, _, block = note.rpartition("\n\n")
    lines = block.splitlines()
    dash, name, b64 = lines[which].split(" ")
    blob = bytearray(base64.b64decode(b64))
    blob[-10] ^= 0x01
    lines[which] = f"{dash} {name} {base64.b64encode(bytes(blob)).decode()}"
    return body + "\n\n" + "\n".join(lines) + "\n"


def test_an_untouched_log_verifies(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = verify(capsys, officer_log.config)
    assert (rc, err) == (0, "")
    assert out.startswith(f"OK: {officer_log.size} entries recomputed (sha256), "
                          f"{len(officer_log.checkpoint_sizes)} signed checkpoints match")
    n = len(PARTNERS)  # every configured connector witnesses
    assert f"cosigned by {n} of {n} witnesses" in out and "2 required" in out


@pytest.mark.parametrize("how", ["breaks-json", "stays-canonical"])
def test_a_flipped_byte_in_an_entry_is_named(officer_log, capsys, how) -> None:  # type: ignore[no-untyped-def]
    k = middle(officer_log)
    data = bytearray(officer_log.target.entry(k))
    if how == "breaks-json":
        data[0] ^= 0x01                          # '{' -> 'z'
    else:                                        # "officer-7" -> "officer-6": still canonical
        at = data.index(b'"officer-7"') + len('"officer-')
        data[at] ^= 0x01
    officer_log.target.set_entry(k, bytes(data))
    rc, out, err = verify(capsys, officer_log.config)
    assert (rc, out) == (1, "")
    assert err.startswith(f"FAILED at index {k}: "), err
    want = "does not decode" if how == "breaks-json" else "do not match the signed checkpoint"
    assert want in err


@pytest.mark.parametrize("where", ["middle", "first", "last"])
def test_a_deleted_entry_is_named(officer_log, capsys, where) -> None:  # type: ignore[no-untyped-def]
    k = {"middle": middle(officer_log), "first": 0, "last": officer_log.size - 1}[where]
    officer_log.target.sql("DELETE FROM audit_entries WHERE idx = ?", (k,))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert err.startswith(f"FAILED at index {k}: entry missing"), err


def test_two_swapped_entries_are_named(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    k = middle(officer_log)
    a, b = officer_log.target.entry(k), officer_log.target.entry(k + 1)
    assert a != b
    officer_log.target.set_entry(k, b)
    officer_log.target.set_entry(k + 1, a)
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert err.startswith(f"FAILED at index {k}: entries do not match the signed checkpoint "
                          f"of size {k + 1}"), err


def test_a_tail_truncated_with_its_counter_is_named(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    """Entries and the next-index counter cut back, checkpoints left: the signed size betrays it."""
    t = middle(officer_log)
    officer_log.target.sql("DELETE FROM audit_entries WHERE idx >= ?", (t,))
    officer_log.target.sql("UPDATE audit_seq SET next_idx = ? WHERE id = 1", (t,))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert err.startswith(f"FAILED at index {t}: checkpoint of size "), err
    assert "deleted at the tail" in err


def _rewrite_history(officer_log, loop, t: int, new_entries: int) -> None:  # type: ignore[no-untyped-def]
    """The operator's attack: cut the log at ``t``, forget later checkpoints and cosignatures,
    reset the counter and append other entries, signing fresh checkpoints with the log key."""
    target = officer_log.target
    target.sql("DELETE FROM audit_entries WHERE idx >= ?", (t,))
    target.sql("DELETE FROM audit_cosignatures WHERE size > ?", (t,))
    target.sql("DELETE FROM audit_checkpoints WHERE size > ?", (t,))
    target.sql("UPDATE audit_seq SET next_idx = ? WHERE id = 1", (t,))
    loop.run(append_entries(target.dsn, officer_log.cfg,
                            [entry(i, org="hpf-changzhou") for i in range(new_entries)]))


def _save_checkpoint(stack: Stack, path: Path, capsys) -> int:  # type: ignore[no-untyped-def]
    rc, out, err = cli(capsys, "audit", "checkpoint", "--config", str(stack.config_file),
                       "--gateway", stack.address, "--org", OFFICERS, "--role", "auditor",
                       "--save", str(path))
    assert rc == 0 and f"saved to {path}" in err
    assert out == path.read_text()
    return int(path.read_text().split("\n")[1])


def test_a_rewritten_history_is_caught_only_with_since(officer_log, stack, loop, capsys,  # type: ignore[no-untyped-def]
                                                       tmp_path) -> None:
    saved = tmp_path / "checkpoint.txt"
    assert _save_checkpoint(stack, saved, capsys) == officer_log.size  # the cut the copy holds
    rc, out, _ = verify(capsys, officer_log.config, "--since", str(saved))
    assert rc == 0 and "extends --since" in out

    t = middle(officer_log)
    _rewrite_history(officer_log, loop, t, officer_log.size - t + 2)

    # Without witnesses and without --since, the rewrite is invisible: every checkpoint is
    # validly signed by the log key and matches the (new) entries.
    no_witness = write_config(officer_log.cfg, officer_log.target.dsn, quorum=0)
    rc, out, err = verify(capsys, no_witness)
    assert (rc, err) == (0, ""), err
    assert out.startswith(f"OK: {officer_log.size + 2} entries")
    # The saved checkpoint catches it.
    rc, out, err = verify(capsys, no_witness, "--since", str(saved))
    assert (rc, out) == (1, "")
    assert "FAILED at" in err
    assert f"the log no longer extends the checkpoint of size {officer_log.size}" in err
    # With the witness quorum, the new checkpoints also lack the witnesses' cosignatures.
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1 and "valid cosignatures" in err and "want at least 2" in err


def test_a_log_truncated_below_a_saved_checkpoint_is_named(officer_log, stack, loop, capsys,  # type: ignore[no-untyped-def]
                                                           tmp_path) -> None:
    saved = tmp_path / "checkpoint.txt"
    assert _save_checkpoint(stack, saved, capsys) == officer_log.size
    t = middle(officer_log)
    _rewrite_history(officer_log, loop, t, 1)
    no_witness = write_config(officer_log.cfg, officer_log.target.dsn, quorum=0)
    assert verify(capsys, no_witness)[0] == 0
    rc, _, err = verify(capsys, no_witness, "--since", str(saved))
    assert rc == 1
    assert err.startswith(f"FAILED at index {t + 1}: the log was truncated: it holds {t + 1} "
                          f"entries, your saved checkpoint covers {officer_log.size}"), err


@pytest.mark.parametrize("which", ["middle", "latest"])
def test_a_forged_checkpoint_signature_fails(officer_log, capsys, which) -> None:  # type: ignore[no-untyped-def]
    size = middle(officer_log) if which == "middle" else officer_log.size
    target = officer_log.target
    target.set_note(size, flip_signature(target.note(size)))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert f"checkpoint of size {size}: signature" in err and "is invalid" in err, err


def test_a_forged_checkpoint_signature_names_the_checkpoint(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    size = middle(officer_log)
    target = officer_log.target
    target.set_note(size, flip_signature(target.note(size)))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert f"size {size}" in err or f"index {size - 1}" in err, err


def test_a_checkpoint_re_signed_by_another_key_fails(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    """Same key name (the origin), different key: the note is not signed by the log key."""
    size = middle(officer_log)
    target = officer_log.target
    body = target.note(size).partition("\n\n")[0] + "\n"
    target.set_note(size, sign_note(body, [NoteSigner.generate(officer_log.cfg.audit_origin)]))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1 and f"checkpoint of size {size}: signature" in err
    assert "no signature by a known key" in err


def test_the_log_key_alone_cannot_satisfy_the_witnesses(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    """A checkpoint signed with the real log key over a forged root still fails (root check)."""
    size = middle(officer_log)
    target = officer_log.target
    lines = target.note(size).partition("\n\n")[0].split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    target.set_note(size, sign_note("\n".join(lines) + "\n", [log_signer(officer_log.cfg)]))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert err.startswith(f"FAILED at index {size - 1}: entries do not match the signed "
                          f"checkpoint of size {size}"), err


def test_a_latest_checkpoint_below_the_witness_quorum_fails(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    target, latest = officer_log.target, officer_log.size
    rows = target.sql("SELECT witness FROM audit_cosignatures WHERE size = ? ORDER BY witness",
                      (latest,))
    assert len(rows) == len(PARTNERS)
    target.sql("DELETE FROM audit_cosignatures WHERE size = ? AND witness <> ?",
               (latest, rows[0][0]))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert f"latest checkpoint (size {latest})" in err
    assert "got 1 valid cosignatures" in err and "want at least 2" in err


def test_a_flipped_byte_in_a_cosignature_fails(officer_log, capsys) -> None:  # type: ignore[no-untyped-def]
    target, latest = officer_log.target, officer_log.size
    witness, line = target.sql("SELECT witness, line FROM audit_cosignatures WHERE size = ? "
                               "ORDER BY witness", (latest,))[0]
    dash, name, b64 = line.rstrip("\n").split(" ")
    blob = bytearray(base64.b64decode(b64))
    blob[-1] ^= 0x01
    target.sql("UPDATE audit_cosignatures SET line = ? WHERE size = ? AND witness = ?",
               (f"{dash} {name} {base64.b64encode(bytes(blob)).decode()}\n", latest, witness))
    rc, _, err = verify(capsys, officer_log.config)
    assert rc == 1
    assert f"latest checkpoint (size {latest})" in err and "is invalid" in err


def _archive(stack: Stack, officer_log, path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`pgw audit export` of the entries the test's copy holds: the officer's archive."""
    rc, _, err = cli(capsys, "audit", "export", "--config", str(stack.config_file),
                     "--gateway", stack.address, "--org", OFFICERS, "--role", "auditor",
                     "--end", str(officer_log.size), "--out", str(path))
    assert rc == 0 and f"exported {officer_log.size} entries" in err, err


@pytest.mark.parametrize("appended", [0, 3])
def test_a_rewritten_history_is_named_exactly_with_an_archive(  # type: ignore[no-untyped-def]
        officer_log, stack, loop, capsys, tmp_path, appended) -> None:
    """Truncated (and re-appended with other entries, re-signed with the log key): against an
    archive from `pgw audit export`, verify names the exact first index that changed."""
    archive = tmp_path / "archive.jsonl"
    _archive(stack, officer_log, archive, capsys)
    rc, out, _ = verify(capsys, officer_log.config, "--since", str(archive))
    assert rc == 0 and "extends --since" in out

    t = middle(officer_log)
    _rewrite_history(officer_log, loop, t, appended)
    no_witness = write_config(officer_log.cfg, officer_log.target.dsn, quorum=0)
    assert verify(capsys, no_witness)[0] == 0          # internally consistent again
    rc, _, err = verify(capsys, no_witness, "--since", str(archive))
    assert rc == 1
    what = "entry differs from your archive" if appended else "entry missing"
    assert err.startswith(f"FAILED at index {t}: {what}"), err
