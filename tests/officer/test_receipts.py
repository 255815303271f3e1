"""Receipts: ``pgw query --receipt FILE`` against a running stack, then ``pgw audit
verify-receipt FILE`` offline; every corruption of the receipt is refused with exit 1."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pgw_officer_harness import HPF, Stack, append_entries, cli, entry, fresh_store

from gateway.audit import NoteSigner, sign_note
from gateway.receipts import save_receipt


def test_pgw_query_saves_a_receipt_that_verifies(stack: Stack, capsys, people,  # type: ignore[no-untyped-def]
                                                 tmp_path) -> None:
    path = tmp_path / "receipt.json"
    rc, _, err = cli(capsys, "query", "--config", str(stack.config_file), "--gateway",
                     stack.address, "--org", HPF, "--role", "requester", "--purpose",
                     "loan-eligibility", "--subject", people.loan[1], "--field",
                     "education.highest_degree", "--receipt", str(path))
    assert rc == 0 and "audit leaf" in err, err
    rc, out, err = verify_receipt(stack, capsys, path)
    assert (rc, err) == (0, "") and out.startswith("OK: entry ")


@pytest.fixture
def receipt(stack: Stack, people, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """A receipt saved exactly as `pgw query --receipt` saves it (gateway.receipts.save_receipt),
    from a real query over gRPC."""
    path = tmp_path / "receipt.json"
    response = stack.query("loan-eligibility", people.loan[1:2], {"education": ["highest_degree"]})
    save_receipt(response.receipt, path)
    return path


def verify_receipt(stack: Stack, capsys, path: Path) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return cli(capsys, "audit", "verify-receipt", "--config", str(stack.config_file), str(path))


def edit(path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text())
    change(doc)
    out = path.with_name("edited.json")
    out.write_text(json.dumps(doc))
    return out


def flip_b64(text: str, at: int = -1) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_saved_receipt_verifies(stack: Stack, capsys, receipt: Path) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(receipt.read_text())
    rc, out, err = verify_receipt(stack, capsys, receipt)
    assert (rc, err) == (0, "")
    assert out.startswith(f"OK: entry {doc['leaf_index']} (allow query by {HPF} for "
                          f"loan-eligibility) is in the log of size {doc['tree_size']}")
    # the receipt's entry is the stored entry at its index
    from gateway.audit._store import open_store

    store = open_store(stack.cfg.audit_dsn)
    try:
        index = int(doc["leaf_index"])
        assert store.read(index, index + 1)[0] == base64.b64decode(doc["entry"])
    finally:
        store.close()


def _wrong_index(doc: dict) -> None:  # type: ignore[type-arg]
    index = int(doc["leaf_index"])
    doc["leaf_index"] = str(index - 1 if index else index + 1)


def _change_entry(doc: dict) -> None:  # type: ignore[type-arg]
    data = json.loads(base64.b64decode(doc["entry"]))
    data["purpose"] = "withdrawal-review"
    doc["entry"] = base64.b64encode(json.dumps(data, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False).encode()).decode()


def _foreign_key(doc: dict) -> None:  # type: ignore[type-arg]
    body = doc["checkpoint"].partition("\n\n")[0] + "\n"
    doc["checkpoint"] = sign_note(body, [NoteSigner.generate(body.split("\n")[0])])


CORRUPTIONS = {
    "flipped proof byte": (lambda d: d["inclusion_proof"].__setitem__(
        0, flip_b64(d["inclusion_proof"][0])), "inclusion proof"),
    "dropped proof hash": (lambda d: d["inclusion_proof"].pop(), "inclusion proof"),
    "flipped entry byte": (lambda d: d.__setitem__("entry", flip_b64(d["entry"], 5)),
                           "inclusion proof"),
    "changed entry": (_change_entry, "inclusion proof"),
    "wrong leaf index": (_wrong_index, "inclusion proof"),
    "other tree size": (lambda d: d.__setitem__("tree_size", str(int(d["tree_size"]) + 1)),
                        "tree size"),
    "flipped checkpoint signature": (lambda d: d.__setitem__("checkpoint", d["checkpoint"][:-6]
                                     + ("A" if d["checkpoint"][-6] != "A" else "B")
                                     + d["checkpoint"][-5:]), "checkpoint"),
    "checkpoint signed by another key": (_foreign_key, "checkpoint: note: got no signature"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupted_receipt_fails(stack: Stack, capsys, receipt: Path,  # type: ignore[no-untyped-def]
                                   corruption: str) -> None:
    change, reason = CORRUPTIONS[corruption]
    rc, out, err = verify_receipt(stack, capsys, edit(receipt, change))
    assert rc == 1 and "OK" not in out
    assert err.startswith(f"FAILED: {reason}"), err


def test_a_checkpoint_swapped_in_from_another_log_fails(stack: Stack, capsys, receipt: Path,  # type: ignore[no-untyped-def]
                                                        loop, tmp_path) -> None:
    """Another log with the same key and origin and the same size: a valid signature, the
    same tree size, but another root, so the inclusion proof fails."""
    size = int(json.loads(receipt.read_text())["tree_size"])
    with fresh_store(stack.kind, tmp_path / "other") as other:
        notes = loop.run(append_entries(other.dsn, stack.cfg, [entry(i) for i in range(size)]))
    assert notes[-1].split("\n")[1] == str(size)
    rc, _, err = verify_receipt(stack, capsys, edit(receipt, lambda d: d.__setitem__(
        "checkpoint", notes[-1])))
    assert rc == 1
    assert err.startswith("FAILED: inclusion proof: inclusion root mismatch"), err


def test_a_receipt_that_is_not_a_receipt_fails(stack: Stack, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, _, err = verify_receipt(stack, capsys, bad)
    assert rc == 1 and err.startswith("FAILED: ") and "not a receipt" in err
    rc, _, err = verify_receipt(stack, capsys, tmp_path / "missing.json")
    assert rc == 1 and "not a receipt" in err
