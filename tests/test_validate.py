"""Identifier validation: GB 11643-1999 ids, GB 32100-2015 credit codes, Luhn."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.validate as v
from gateway.errors import InvalidArgument

TODAY = dt.date(2026, 11, 25)
ID_ALPHABET = "0123456789X"
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# Hand-checked vectors: the GB 11643-1999 example and ids built for these tests.
VALID_IDS = [
    "11010519491231002X",  # the standard's own example
    "320402199003071235",  # sum 216, 216 mod 11 = 7 -> "5"
    "320412198511200046",
    "320481200402290014",  # leap day
    "340104196001012342",
]
VALID_CREDIT_CODES = ["91320402MA1MXXXXXF", "91320411137654321Q", "12320400466012345K"]
VALID_LUHN = ["79927398713", "4111111111111111", "6222021200001234561", "6225880123456783"]


def test_public_surface() -> None:
    assert v.__all__ == sorted([
        "credit_code_check_char", "is_valid_credit_code", "luhn_check_digit", "luhn_valid",
        "normalize_person_id", "person_id_check_char", "screen_rows", "validate_person_ids",
    ])


@pytest.mark.parametrize("pid", VALID_IDS)
def test_known_valid_ids(pid: str) -> None:
    assert v.normalize_person_id(pid, today=TODAY) == pid
    assert v.person_id_check_char(pid[:17]) == pid[17]


def test_lowercase_x_is_normalised() -> None:
    assert v.normalize_person_id("11010519491231002x", today=TODAY) == "11010519491231002X"


@pytest.mark.parametrize(("raw", "reason"), [
    ("32040219900307123", "wrong length: got 17 characters, want 18"),
    ("3204021990030712355", "wrong length: got 19 characters, want 18"),
    ("", "wrong length: got 0 characters, want 18"),
    ("3204A2199003071235", "non-digit character at position 5"),
    ("32040219900307123 ", "invalid check character at position 18"),
    ("320402199002301235", "impossible birth date"),   # 30 February
    ("320402190002291235", "impossible birth date"),   # 1900 was not a leap year
    ("320402189912311235", "impossible birth date"),   # before 1900
    ("320402202712011235", "impossible birth date"),   # in the future
    ("320402199003071236", "checksum mismatch"),
])
def test_each_failure_class(raw: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        v.normalize_person_id(raw, today=TODAY)
    assert str(info.value) == reason
    if len(raw) >= 6:
        assert raw not in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong type"):
        v.normalize_person_id(320402199003071235)  # type: ignore[arg-type]


def test_default_today_accepts_old_ids() -> None:
    assert v.normalize_person_id(VALID_IDS[0]) == VALID_IDS[0]


def test_validate_person_ids_names_each_bad_position() -> None:
    good = VALID_IDS[1]
    assert v.validate_person_ids([good, "11010519491231002x"], today=TODAY) == [
        good, "11010519491231002X"]
    bad = [good, good[:-1], good, good[:-1] + "9", "x" * 18]
    with pytest.raises(InvalidArgument) as info:
        v.validate_person_ids(bad, field="ids", today=TODAY)
    violations = info.value.violations
    assert [x.field for x in violations] == ["ids[1]", "ids[3]", "ids[4]"]
    assert [x.description for x in violations] == [
        "wrong length: got 17 characters, want 18", "checksum mismatch",
        "non-digit character at position 1"]
    assert good[:12] not in info.value.message


def test_check_char_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        v.person_id_check_char("1234")
    with pytest.raises(ValueError):
        v.person_id_check_char("1101051949123100A")


# --- property tests: resident ids -------------------------------------------------------

@st.composite
def person_ids(draw: st.DrawFn) -> str:
    region = draw(st.from_regex(r"[1-8][0-9]{5}", fullmatch=True))
    born = draw(st.dates(dt.date(1900, 1, 1), TODAY))
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + v.person_id_check_char(first17)


@given(person_ids())
def test_generated_ids_round_trip(pid: str) -> None:
    assert v.normalize_person_id(pid, today=TODAY) == pid
    assert v.normalize_person_id(pid.lower(), today=TODAY) == pid


@given(person_ids(), st.integers(0, 17), st.sampled_from(ID_ALPHABET + "a "))
def test_any_single_change_is_caught(pid: str, pos: int, ch: str) -> None:
    changed = pid[:pos] + ch + pid[pos + 1:]
    if changed.upper() == pid:
        return  # not a change (or only the case of the check character)
    with pytest.raises(ValueError):
        v.normalize_person_id(changed, today=TODAY)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.one_of(
    person_ids(), person_ids().map(str.lower),
    st.tuples(person_ids(), st.integers(0, 17), st.sampled_from(ID_ALPHABET + "ax \n٣")).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:]),
    st.from_regex(r"[0-9]{6}(1899|1900|1904|2000|2026|2027)(0[0-3]|1[1-3])(0[0-9]|2[89]|3[01])"
                  r"[0-9]{3}[0-9Xx]", fullmatch=True)), min_size=64, max_size=90))
def test_batch_screen_agrees_with_normalize_id_by_id(ids: list[str]) -> None:
    """validate_person_ids screens batches of 64 or more with numpy: same outcome per id."""
    want, bad = [], []
    for i, raw in enumerate(ids):
        try:
            want.append(v.normalize_person_id(raw, today=TODAY))
        except ValueError as exc:
            bad.append((f"ids[{i}]", str(exc)))
    if not bad:
        assert v.validate_person_ids(ids, field="ids", today=TODAY) == want
        return
    with pytest.raises(InvalidArgument) as info:
        v.validate_person_ids(ids, field="ids", today=TODAY)
    assert [(x.field, x.description) for x in info.value.violations] == bad


@settings(max_examples=10, deadline=None)
@given(st.lists(person_ids(), min_size=64, max_size=80))
def test_batch_screen_accepts_valid_batches(ids: list[str]) -> None:
    lowered = [pid.lower() for pid in ids]
    assert v.validate_person_ids(lowered, today=TODAY) == ids


# --- credit codes ------------------------------------------------------------------------

@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_known_valid_credit_codes(code: str) -> None:
    assert v.is_valid_credit_code(code)
    assert v.credit_code_check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", [
    "91320411137654321R",    # wrong check
    "91320411137654321",     # too short
    "91320411137654321QQ",   # too long
    "9132041113765432IQ",    # I is outside the alphabet
    "91320411137654321q",    # lower case is not accepted
    "",
])
def test_invalid_credit_codes(code: str) -> None:
    assert not v.is_valid_credit_code(code)


def test_credit_check_char_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="position 3"):
        v.credit_code_check_char("91O20411137654321")
    with pytest.raises(ValueError):
        v.credit_code_check_char("9132")


def test_credit_check_31_becomes_0() -> None:
    assert v.credit_code_check_char("0" * 17) == "0"


credit_bodies = st.text(alphabet=CREDIT_ALPHABET, min_size=17, max_size=17)


@given(credit_bodies)
def test_credit_codes_round_trip(body: str) -> None:
    assert v.is_valid_credit_code(body + v.credit_code_check_char(body))


@given(credit_bodies, st.integers(0, 17), st.sampled_from(CREDIT_ALPHABET + "IOZ"))
def test_credit_single_change_is_caught(body: str, pos: int, ch: str) -> None:
    code = body + v.credit_code_check_char(body)
    changed = code[:pos] + ch + code[pos + 1:]
    if changed != code:
        assert not v.is_valid_credit_code(changed)


# --- Luhn --------------------------------------------------------------------------------

@pytest.mark.parametrize("number", VALID_LUHN)
def test_known_luhn(number: str) -> None:
    assert v.luhn_valid(number)
    assert v.luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize("number", ["79927398710", "4111111111111112", "", "0", "4111 1111", "٣٣"])
def test_invalid_luhn(number: str) -> None:
    assert not v.luhn_valid(number)


def test_luhn_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        v.luhn_check_digit("62a")
    with pytest.raises(ValueError):
        v.luhn_check_digit("")


@given(st.from_regex(r"[0-9]{1,24}", fullmatch=True))
def test_luhn_round_trip(body: str) -> None:
    assert v.luhn_valid(body + v.luhn_check_digit(body))


@given(st.from_regex(r"[0-9]{15,18}", fullmatch=True), st.data())
def test_luhn_single_change_is_caught(body: str, data: st.DataObject) -> None:
    number = body + v.luhn_check_digit(body)
    pos = data.draw(st.integers(0, len(number) - 1))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[pos]))
    assert not v.luhn_valid(number[:pos] + digit + number[pos + 1:])
