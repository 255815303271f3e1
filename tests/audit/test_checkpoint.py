"""C2SP signed notes, checkpoints and cosignatures: known answers, round trips, rejections."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    cosign,
    key_hash,
    open_note,
    sign_note,
    verify_cosignatures,
)

# Published examples: golang.org/x/mod/sumdb/note docs and c2sp.org/signed-note.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = ("If you think cryptography is the answer to your problem,\n"
              "then you don't know what your problem is.\n")
PETER_NOTE = PETER_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZIn"
                           "NIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1Y"
             "Eq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
# c2sp.org/tlog-cosignature example line (its public key is not published).
SPEC_COSIG = ("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
              "qhf5nNo0xUe+mbIUBkBIfZ+qnA==")

LOG = NoteSigner.generate("example.com/log")
CP = Checkpoint("example.com/log", 20852163, bytes(range(32)))


def _witness(n: int) -> NoteSigner:
    return NoteSigner.generate(f"witness.example/w{n}", SIG_TYPE_COSIGNATURE_V1)


def test_go_reference_keys_and_signature() -> None:
    signer = NoteSigner.from_skey(PETER_SKEY)
    assert signer.to_skey() == PETER_SKEY
    assert signer.verifier().vkey() == PETER_VKEY
    assert NoteVerifier.from_vkey(PETER_VKEY).key_hash == 0xC74F20A3
    assert sign_note(PETER_TEXT, [signer]) == PETER_NOTE  # Ed25519 is deterministic
    opened = open_note(PETER_NOTE, [NoteVerifier.from_vkey(PETER_VKEY)])
    assert (opened.body, opened.verified_names) == (PETER_TEXT, ["PeterNeumann"])


def test_spec_example_opens() -> None:
    opened = open_note(SPEC_NOTE, [NoteVerifier.from_vkey(SPEC_VKEY)])
    assert opened.body == "This is an example message.\n"
    assert opened.signatures[0].key_hash == 0x530D903A


def test_key_hash_formula() -> None:
    v = NoteVerifier.from_vkey(PETER_VKEY)
    pub = v.public_key.public_bytes_raw()
    assert key_hash("PeterNeumann", 0x01, pub) == 0xC74F20A3
    assert NoteVerifier(v.name, v.public_key, SIG_TYPE_COSIGNATURE_V1).key_hash == \
        key_hash("PeterNeumann", 0x04, pub) != 0xC74F20A3


@pytest.mark.parametrize("bad", [
    PETER_VKEY.replace("c74f20a3", "c74f20a4"),      # key id does not match
    PETER_VKEY.replace("+ARpc", "+AhpC"),            # unknown type / other key
    PETER_VKEY[:-4],                                 # truncated key
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
    "PeterNeumann+c74f20a3",                         # missing key
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # uppercase hex
])
def test_mangled_vkeys_rejected(bad: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.from_vkey(bad)


def test_skey_round_trip_and_rejection() -> None:
    w = _witness(1)
    again = NoteSigner.from_skey(w.to_skey())
    assert again.verifier().vkey() == w.verifier().vkey() and again.sig_type == 0x04
    with pytest.raises(NoteError, match="PRIVATE"):
        NoteSigner.from_skey(PETER_VKEY)
    with pytest.raises(NoteError, match="key id"):
        NoteSigner.from_skey(PETER_SKEY.replace("c74f20a3", "00000000"))
    assert "PRIVATE" not in repr(w) and "private_key" not in repr(w)


def test_checkpoint_body_and_parse() -> None:
    assert CP.body() == "example.com/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.parse(CP.body()) == CP
    ext = Checkpoint("o", 0, b"\x00" * 32, ("ext line",))
    assert Checkpoint.parse(ext.body()) == ext


@given(st.text(st.characters(min_codepoint=0x21, exclude_characters="\u2028\u2029\x85"),
               min_size=1), st.integers(0, 2**63), st.binary(min_size=1, max_size=64))
def test_checkpoint_round_trip(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert Checkpoint.parse(cp.body()) == cp


@pytest.mark.parametrize("body", [
    "o\n1\n", "o\n01\nAAAA\n", "o\n-1\nAAAA\n", "o\n1\nAAAA", "o\n1\n!!!!\n", "\n1\nAAAA\n",
    "o\n1\nAAB=\n",  # non-canonical base64 (padding bits set)
    "o\n1\nAAAA\n\n", "o\x01\n1\nAAAA\n",
])
def test_bad_checkpoints_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


def test_sign_open_round_trip_and_unknown_signers_kept() -> None:
    other = NoteSigner.generate("other.example/key")
    note = sign_note(CP.body(), [LOG, other])
    opened = open_note(note, [LOG.verifier()])
    assert opened.body == CP.body() and opened.verified_names == ["example.com/log"]
    assert [s.name for s in opened.signatures] == ["example.com/log", "other.example/key"]
    assert Checkpoint.parse(opened.body) == CP
    both = open_note(note, [LOG.verifier(), other.verifier()])
    assert both.verified_names == ["example.com/log", "other.example/key"]


def test_every_flipped_byte_rejected() -> None:
    note = sign_note(CP.body(), [LOG])
    raw = note.encode()
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        try:
            text = flipped.decode()
        except UnicodeDecodeError:
            continue
        with pytest.raises(NoteError):
            open_note(text, [LOG.verifier()])


def test_unknown_key_and_malformed_notes_rejected() -> None:
    note = sign_note(CP.body(), [LOG])
    impostor = NoteSigner.generate("example.com/log")  # same name, other key
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [impostor.verifier()])
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [])
    forged = CP.body() + "\n" + note.split("\n\n")[1].replace(
        note.split()[-1], base64.b64encode(LOG.key_hash.to_bytes(4, "big") + bytes(64)).decode())
    with pytest.raises(NoteError, match="invalid"):
        open_note(forged, [LOG.verifier()])
    for bad in [CP.body(), CP.body() + "\n", CP.body() + "\n-- x AAAAAAA=\n",
                CP.body() + "\n\u2014 example.com/log\n", note[:-1], note.replace("\n", "\r\n")]:
        with pytest.raises(NoteError):
            open_note(bad, [LOG.verifier()])
    with pytest.raises(NoteError, match="ending in newline"):
        sign_note("no newline", [LOG])
    with pytest.raises(NoteError, match="cannot sign notes"):
        sign_note(CP.body(), [_witness(1)])


def test_cosignature_valid_and_matches_spec_layout() -> None:
    w = _witness(1)
    line = cosign(CP, w, 1679315147)
    blob = base64.b64decode(line.split()[-1])
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    assert len(blob) == 4 + 8 + 64 and blob[:4] == w.key_hash.to_bytes(4, "big")
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    spec = base64.b64decode(SPEC_COSIG)  # same timestamp in the spec's example
    assert len(spec) == 76 and spec[4:12] == blob[4:12]
    msg = b"cosignature/v1\ntime 1679315147\n" + CP.body().encode()
    w.verifier().public_key.verify(blob[12:], msg)  # raises if the message differs
    note = sign_note(CP.body(), [LOG]) + line
    assert open_note(note, [LOG.verifier()]).verified_names == ["example.com/log"]
    assert verify_cosignatures(note, [w.verifier()], 1) == ["witness.example/w1"]
    assert cosign(CP.body(), w, 1679315147) == line


def test_cosignature_over_other_body_rejected() -> None:
    w = _witness(1)
    other = Checkpoint(CP.origin, CP.size + 1, bytes(32))
    note = sign_note(CP.body(), [LOG]) + cosign(other, w, 1700000000)
    with pytest.raises(NoteError, match="invalid"):
        verify_cosignatures(note, [w.verifier()], 1)


def test_required_count_and_key_types() -> None:
    ws = [_witness(i) for i in range(3)]
    note = sign_note(CP.body(), [LOG]) + cosign(CP, ws[0], 10) + cosign(CP, ws[1], 11)
    note += cosign(CP, _witness(9), 12)  # unknown witness: ignored
    verifiers = [w.verifier() for w in ws]
    assert verify_cosignatures(note, verifiers, 2) == ["witness.example/w0", "witness.example/w1"]
    assert verify_cosignatures(note, verifiers, 0) == ["witness.example/w0", "witness.example/w1"]
    with pytest.raises(NoteError, match="got 2 valid cosignatures.*want at least 3"):
        verify_cosignatures(note, verifiers, 3)
    with pytest.raises(NoteError, match="out of range"):
        verify_cosignatures(note, verifiers, 1, max_time=10)
    with pytest.raises(NoteError, match="want 0x04"):
        cosign(CP, LOG, 10)  # a log key cannot cosign
    with pytest.raises(NoteError, match="want 0x04"):
        verify_cosignatures(note, [LOG.verifier()], 1)
    with pytest.raises(NoteError):
        cosign("not a checkpoint\n", ws[0], 10)
    with pytest.raises(ValueError):
        verify_cosignatures(note, verifiers, -1)
