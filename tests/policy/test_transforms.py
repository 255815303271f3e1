"""Transforms: parameter validation, outputs, and properties that must always hold."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.sdk._schema import FieldType as T
from connectors.sdk._transform_base import TransformParamError
from connectors.sdk._transforms import (
    TRANSFORMS,
    build_transform,
    derive_pseudonym_key,
    transform_row,
)

KEY = derive_pseudonym_key(b"connector-secret-0123456789", "hpf-loan-ss")


def build(name: str, field_type: T, **params: object):
    return build_transform(name, params, field_type, pseudonym_key=KEY)


def test_registry_names() -> None:
    assert sorted(TRANSFORMS) == ["aggregate", "encrypted", "generalize", "mask", "plain",
                                  "predicate", "pseudonym", "suppress"]
    assert {n for n, cls in TRANSFORMS.items() if not cls.releasable} == {"aggregate",
                                                                          "encrypted"}


@pytest.mark.parametrize(("name", "params", "param"), [
    ("encrypted", {"ops": ["divide"]}, "ops"),
    ("encrypted", {"ops": ["linear"]}, "models"),
    ("aggregate", {"ops": ["sum"], "min_k": 1}, "min_k"),
    ("aggregate", {"ops": [], "min_k": 5}, "ops"),
])
def test_withheld_grants_validate_params(name: str, params: dict[str, Any], param: str) -> None:
    with pytest.raises(TransformParamError) as info:
        build_transform(name, params, T.FLOAT)
    assert info.value.param == param


@pytest.mark.parametrize("name", ["encrypted", "aggregate"])
def test_withheld_grants_never_yield_a_plain_value(name: str) -> None:
    params = ({"ops": ["linear"], "models": ["m"]} if name == "encrypted"
              else {"ops": ["sum"], "min_k": 10})
    fn = build_transform(name, params, T.FLOAT)
    with pytest.raises(PermissionError):
        fn(6000.0)
    assert not fn.conforms(6000.0) and not fn.conforms("6000")


def test_unknown_transform_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="generalize, mask, plain, predicate, pseudonym"):
        build("hash", T.STRING)


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(TransformParamError) as info:
        build("mask", T.STRING, keep_frist=1)
    assert info.value.param == "keep_frist"


@pytest.mark.parametrize("field_type", list(T))
def test_plain_and_suppress_take_any_type(field_type: T) -> None:
    assert build("plain", field_type).output_type is field_type
    assert build("plain", field_type)(None) is None
    suppress = build("suppress", field_type)
    assert suppress.output_type is field_type
    assert suppress("anything") is None and suppress(None) is None


def test_plain_rejects_wrong_runtime_type() -> None:
    with pytest.raises(TypeError):
        build("plain", T.INT)("12")
    with pytest.raises(TypeError):
        build("plain", T.INT)(True)
    assert build("plain", T.INT)(12) == 12


# -- mask ---------------------------------------------------------------------------------

def test_mask_examples() -> None:
    assert build("mask", T.STRING, keep_first=1)("张三丰") == "张**"
    assert build("mask", T.CODE, keep_first=2, keep_last=2, char="#")("91320400") == "91####00"
    assert build("mask", T.STRING, keep_first=2, keep_last=2)("abcd") == "****"
    assert build("mask", T.STRING, keep_first=1)(None) is None
    assert build("mask", T.CODE).output_type is T.STRING


@pytest.mark.parametrize(("field_type", "params", "param"), [
    (T.INT, {}, "transform"),
    (T.STRING, {"keep_first": -1}, "keep_first"),
    (T.STRING, {"keep_last": 1.5}, "keep_last"),
    (T.STRING, {"keep_last": True}, "keep_last"),
    (T.STRING, {"char": "**"}, "char"),
    (T.STRING, {"char": ""}, "char"),
])
def test_mask_bad_params(field_type: T, params: dict[str, object], param: str) -> None:
    with pytest.raises(TransformParamError) as info:
        build("mask", field_type, **params)
    assert info.value.param == param and param in str(info.value)


@given(st.text(st.characters(exclude_characters="\x00"), max_size=40),
       st.integers(0, 10), st.integers(0, 10))
def test_mask_never_reveals_more_than_allowed(value: str, first: int, last: int) -> None:
    out = build("mask", T.STRING, keep_first=first, keep_last=last, char="\x00")(value)
    assert len(out) == len(value)
    shown = [c for c in out if c != "\x00"]
    assert len(shown) <= first + last
    if value:
        assert out != value
    if first + last >= len(value):
        assert out == "\x00" * len(value)
    else:
        assert out.startswith(value[:first]) and out.endswith(value[len(value) - last:])


# -- generalize ---------------------------------------------------------------------------

def test_generalize_examples() -> None:
    assert build("generalize", T.INT, band=2000)(6543) == "[6000, 8000)"
    assert build("generalize", T.INT, band=2000)(-1) == "[-2000, 0)"
    assert build("generalize", T.FLOAT, band=0.5)(1.75) == "[1.5, 2)"
    edges = build("generalize", T.FLOAT, edges=[3000, 5000, 8000, 12000, 20000])
    assert [edges(v) for v in (2999.99, 3000, 4999.5, 12000, 25000.0)] == [
        "<3000", "[3000, 5000)", "[3000, 5000)", "[12000, 20000)", ">=20000"]
    assert build("generalize", T.DATE, to="year")("2024-05-17") == "2024"
    assert build("generalize", T.DATE, to="year-month")(date(2024, 5, 17)) == "2024-05"
    assert build("generalize", T.MONTH, to="year")("2024-05") == "2024"
    assert build("generalize", T.CODE, prefix=4)("320412") == "3204"
    assert build("generalize", T.CODE, prefix=4).output_type is T.STRING


def test_generalize_prefix_never_returns_the_whole_code() -> None:
    with pytest.raises(ValueError, match="whole code"):
        build("generalize", T.CODE, prefix=6)("320412")


def test_generalize_rejects_malformed_dates() -> None:
    with pytest.raises(ValueError):
        build("generalize", T.DATE, to="year")("17/05/2024")


@pytest.mark.parametrize(("field_type", "params", "param"), [
    (T.STRING, {"prefix": 2}, "transform"),
    (T.BOOL, {}, "transform"),
    (T.INT, {}, "band"),
    (T.INT, {"band": 0}, "band"),
    (T.INT, {"band": -5}, "band"),
    (T.INT, {"band": 2.5}, "band"),
    (T.FLOAT, {"band": float("inf")}, "band"),
    (T.INT, {"band": 10, "edges": [1, 2]}, "band"),
    (T.INT, {"edges": []}, "edges"),
    (T.INT, {"edges": [5, 3]}, "edges"),
    (T.INT, {"edges": [3, 3]}, "edges"),
    (T.FLOAT, {"edges": [1, "2"]}, "edges"),
    (T.INT, {"prefix": 2}, "prefix"),
    (T.DATE, {"to": "week"}, "to"),
    (T.MONTH, {"to": "year-month"}, "to"),
    (T.CODE, {"prefix": 0}, "prefix"),
    (T.CODE, {"prefix": "4"}, "prefix"),
    (T.CODE, {"to": "year"}, "to"),
])
def test_generalize_bad_params(field_type: T, params: dict[str, object], param: str) -> None:
    with pytest.raises(TransformParamError) as info:
        build("generalize", field_type, **params)
    assert info.value.param == param


_LABEL = re.compile(r"\[(\S+), (\S+)\)")


@given(st.integers(-10**9, 10**9), st.integers(1, 10**6))
def test_int_value_falls_in_its_band(value: int, band: int) -> None:
    lo, hi = map(int, _LABEL.fullmatch(build("generalize", T.INT, band=band)(value)).groups())
    assert lo <= value < hi and hi - lo == band and lo % band == 0


@given(st.floats(-1e9, 1e9), st.sampled_from([0.1, 0.25, 0.5, 3, 1000, 2000.5]))
def test_float_value_falls_in_its_band(value: float, band: float) -> None:
    lo, hi = map(float, _LABEL.fullmatch(build("generalize", T.FLOAT, band=band)(value)).groups())
    assert lo <= value < hi


@given(st.floats(-1e6, 1e6))
def test_float_value_falls_in_its_edge_interval(value: float) -> None:
    edges = [3000, 5000, 8000.5]
    label = build("generalize", T.FLOAT, edges=edges)(value)
    if label.startswith("<"):
        assert value < 3000
    elif label.startswith(">="):
        assert value >= 8000.5
    else:
        lo, hi = map(float, _LABEL.fullmatch(label).groups())
        assert lo <= value < hi and lo in edges and hi in edges


# -- pseudonym ----------------------------------------------------------------------------

def test_pseudonym_needs_a_key() -> None:
    with pytest.raises(TransformParamError) as info:
        build_transform("pseudonym", {}, T.CODE)
    assert info.value.param == "pseudonym_key"
    with pytest.raises(TransformParamError):
        build_transform("pseudonym", {}, T.CODE, pseudonym_key=b"short")
    with pytest.raises(TransformParamError):
        build("pseudonym", T.FLOAT)
    with pytest.raises(TransformParamError):
        build("pseudonym", T.CODE, salt="x")


def test_pseudonym_output() -> None:
    p = build("pseudonym", T.CODE)
    assert p.output_type is T.STRING
    assert re.fullmatch(r"[0-9a-f]{64}", p("91320400MA1X2Y3Z4K"))
    assert build("pseudonym", T.INT)(42) == build("pseudonym", T.STRING)("42")


def test_derive_pseudonym_key() -> None:
    secret = b"connector-secret-0123456789"
    assert len(KEY) == 32
    assert derive_pseudonym_key(secret, "hpf-loan-ss") == KEY
    assert derive_pseudonym_key(secret, "other-agreement") != KEY
    assert derive_pseudonym_key(secret + b"!", "hpf-loan-ss") != KEY
    with pytest.raises(ValueError, match="connector_secret"):
        derive_pseudonym_key(b"short", "x")
    with pytest.raises(ValueError, match="agreement_id"):
        derive_pseudonym_key(secret, "")


@given(st.text(min_size=1, max_size=30), st.binary(min_size=16, max_size=48),
       st.binary(min_size=16, max_size=48))
def test_pseudonym_deterministic_and_key_dependent(value: str, k1: bytes, k2: bytes) -> None:
    a = build_transform("pseudonym", {}, T.STRING, pseudonym_key=k1)
    b = build_transform("pseudonym", {}, T.STRING, pseudonym_key=k1)
    c = build_transform("pseudonym", {}, T.STRING, pseudonym_key=k2)
    assert a(value) == b(value)
    assert (a(value) == c(value)) == (k1 == k2)


@given(st.text(max_size=20), st.text(max_size=20))
def test_pseudonym_distinguishes_values(v1: str, v2: str) -> None:
    p = build("pseudonym", T.STRING)
    assert (p(v1) == p(v2)) == (v1 == v2)


# -- predicate ----------------------------------------------------------------------------

@pytest.mark.parametrize(("field_type", "op", "operand", "value", "expected"), [
    (T.INT, ">=", 12, 12, True),
    (T.INT, ">=", 12, 11, False),
    (T.INT, "<", 6, 5, True),
    (T.FLOAT, ">", 6000, 6000.01, True),
    (T.FLOAT, "<=", 6000.5, 6000.5, True),
    (T.INT, "!=", 0, 0, False),
    (T.STRING, "==", "active", "active", True),
    (T.STRING, "in", ["suspended", "terminated"], "active", False),
    (T.CODE, "in", ["320412"], "320412", True),
    (T.BOOL, "==", False, False, True),
    (T.MONTH, ">=", "2024-06", "2024-10", True),
    (T.MONTH, "<", "2024-06", "2023-12", True),
    (T.DATE, "<", date(2024, 1, 1), "2023-12-31", True),
])
def test_predicate(field_type: T, op: str, operand: object, value: object,
                   expected: bool) -> None:
    p = build("predicate", field_type, op=op, value=operand)
    assert p.output_type is T.BOOL
    assert p(value) is expected
    assert p(None) is None


@pytest.mark.parametrize(("field_type", "params", "param"), [
    (T.INT, {"op": "=~", "value": 1}, "op"),
    (T.INT, {"value": 1}, "op"),
    (T.INT, {"op": ">="}, "value"),
    (T.INT, {"op": ">=", "value": "12"}, "value"),
    (T.INT, {"op": ">=", "value": True}, "value"),
    (T.STRING, {"op": "==", "value": 1}, "value"),
    (T.STRING, {"op": ">", "value": "a"}, "op"),
    (T.BOOL, {"op": "<", "value": True}, "op"),
    (T.BOOL, {"op": "==", "value": "yes"}, "value"),
    (T.MONTH, {"op": ">=", "value": "2024-13"}, "value"),
    (T.MONTH, {"op": ">=", "value": "2024-1"}, "value"),
    (T.DATE, {"op": "<", "value": "2024-02-30"}, "value"),
    (T.INT, {"op": "in", "value": 3}, "value"),
    (T.INT, {"op": "in", "value": []}, "value"),
    (T.STRING, {"op": "in", "value": ["a", 2]}, "value"),
    (T.FLOAT_LIST, {"op": "==", "value": 1}, "transform"),
])
def test_predicate_bad_params(field_type: T, params: dict[str, object], param: str) -> None:
    with pytest.raises(TransformParamError) as info:
        build("predicate", field_type, **params)
    assert info.value.param == param


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_predicate_matches_python(value: int, operand: int) -> None:
    assert build("predicate", T.INT, op=">=", value=operand)(value) is (value >= operand)


def test_transform_row_is_the_pipeline() -> None:
    transforms = {"insured_status": build("predicate", T.STRING, op="==", value="active"),
                  "name": build("mask", T.STRING, keep_first=1)}
    row = {"insured_status": "active", "name": "李四", "card_number": "6222"}
    assert transform_row(transforms, row) == {"insured_status": True, "name": "李*"}
