"""Schema declarations: the field catalogue a connector publishes through ``Describe``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FieldType(str, Enum):
    """The value kinds a partner field can hold (and the proto ``Value`` case carrying it)."""

    STRING = "string"        # free text or enum label
    INT = "int"
    FLOAT = "float"          # amounts in CNY
    BOOL = "bool"
    DATE = "date"            # "YYYY-MM-DD"
    MONTH = "month"          # "YYYY-MM"
    CODE = "code"            # hierarchical code: region code, unified social credit code
    FLOAT_LIST = "float_list"  # e.g. 12 monthly payroll inflows


class Sensitivity(str, Enum):
    """GB/T 35273-2020 flavoured sensitivity labels, shown to integrators and officers."""

    IDENTIFIER = "identifier"      # directly identifies a person (card number, certificate no.)
    SENSITIVE = "sensitive"        # sensitive personal information (financial, status)
    PERSONAL = "personal"          # ordinary personal information


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    sensitivity: Sensitivity
    description: str


@dataclass(frozen=True)
class Schema:
    """A partner's catalogue: its id (e.g. ``social-security``) and its fields, by name."""

    partner: str
    fields: tuple[FieldSpec, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.partner}: duplicate field names")

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)
