"""Approved models for encrypted compute: ``policies/models/*.yaml``, validated at load.

A model fixes everything a requester must not choose: the inputs (``partner.field``), their
weights and the bias, for one requester org and one purpose. The gateway evaluates it on
ciphertexts; each input must also be granted ``encrypted`` with op ``linear`` and this model
listed in the partner's agreement (checked per request, not here). Like agreements, a model
parses once into a frozen object with a content hash over its canonical JSON, and a bad file
fails with an error naming the file, the rule and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.sdk._schema import FieldType, Schema
from gateway.policy._loader import PolicyLoadError, _read_yaml, default_catalogues

_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
_KEYS = {"id", "version", "requester_org", "purpose", "description", "inputs", "bias"}
_NUMERIC = {FieldType.INT, FieldType.FLOAT}


@dataclass(frozen=True)
class ModelInput:
    """One input of a linear model: a partner's field and its weight."""

    partner: str
    field: str
    weight: float

    @property
    def name(self) -> str:
        return f"{self.partner}.{self.field}"


@dataclass(frozen=True)
class ApprovedModel:
    """An approved linear model: ``bias + sum(weight * input)`` per subject."""

    id: str
    version: int
    requester_org: str
    purpose: str
    description: str
    inputs: tuple[ModelInput, ...]
    bias: float
    source: str = field(default="", compare=False)
    content_hash: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(json.dumps(self.canonical(), sort_keys=True,
                                           separators=(",", ":")).encode()).hexdigest()
        object.__setattr__(self, "content_hash", digest)

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "requester_org": self.requester_org,
                "purpose": self.purpose, "description": self.description, "bias": self.bias,
                "inputs": [{"input": i.name, "weight": i.weight} for i in self.inputs]}

    @property
    def partners(self) -> tuple[str, ...]:
        """The partners the inputs come from, in input order, each once."""
        return tuple(dict.fromkeys(i.partner for i in self.inputs))

    @property
    def label(self) -> str:
        return f"{self.id} v{self.version}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_model(data: Any, file: str, catalogues: Mapping[str, Schema]) -> ApprovedModel:
    """One model from its YAML data; :class:`PolicyLoadError` names the first problem."""
    def fail(rule: str, reason: str) -> PolicyLoadError:
        return PolicyLoadError(file, rule, reason)

    if not isinstance(data, dict):
        raise fail("model", "want a mapping")
    if set(data) != _KEYS:
        extra, missing = sorted(set(data) - _KEYS), sorted(_KEYS - set(data))
        raise fail("model", f"got extra keys {extra} and missing keys {missing}, "
                   f"want exactly {sorted(_KEYS)}")
    for key in ("id", "requester_org", "purpose"):
        if not isinstance(data[key], str) or not _NAME.match(data[key]):
            raise fail(key, "want a lowercase-hyphenated name")
    if Path(file).stem != data["id"]:
        raise fail("id", f"got {data['id']!r}, want the file name {Path(file).stem!r}")
    if type(data["version"]) is not int or data["version"] < 1:
        raise fail("version", f"got {data['version']!r}, want an integer >= 1")
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise fail("description", "want a non-empty string")
    bias = _number(data["bias"])
    if bias is None:
        raise fail("bias", f"got {data['bias']!r}, want a finite number")
    raw = data["inputs"]
    if not isinstance(raw, list) or not raw:
        raise fail("inputs", "want a non-empty list of {input: PARTNER.FIELD, weight: NUMBER}")
    inputs: list[ModelInput] = []
    for i, item in enumerate(raw):
        rule = f"inputs[{i}]"
        if not isinstance(item, dict) or set(item) != {"input", "weight"}:
            raise fail(rule, "want exactly the keys input, weight")
        partner, _, name = str(item["input"]).partition(".")
        schema = catalogues.get(partner)
        if schema is None:
            raise fail(f"{rule}.input", f"got partner {partner!r}, want one of "
                       f"{sorted(catalogues)}")
        spec = schema.field(name)
        if spec is None:
            raise fail(f"{rule}.input", f"got {name!r}, not in the {partner} catalogue")
        if spec.type not in _NUMERIC:
            raise fail(f"{rule}.input", f"got a {spec.type.name.lower()} field, want a number")
        weight = _number(item["weight"])
        if weight is None:
            raise fail(f"{rule}.weight", f"got {item['weight']!r}, want a finite number")
        if any(m.name == item["input"] for m in inputs):
            raise fail(f"{rule}.input", "listed twice")
        inputs.append(ModelInput(partner, name, weight))
    return ApprovedModel(data["id"], data["version"], data["requester_org"], data["purpose"],
                         " ".join(data["description"].split()), tuple(inputs), bias,
                         source=file)


def load_models(directory: str | Path,
                catalogues: Mapping[str, Schema] | None = None) -> dict[str, ApprovedModel]:
    """The approved models under ``directory/models`` (the policy directory), by id.

    A missing ``models`` folder means no models; any bad file raises :class:`PolicyLoadError`.
    """
    catalogues = default_catalogues() if catalogues is None else catalogues
    folder = Path(directory) / "models"
    models: dict[str, ApprovedModel] = {}
    if not folder.is_dir():
        return models
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix != ".yaml" or not path.is_file():
            raise PolicyLoadError(str(path), "file", "not a model: want one *.yaml file each")
        problems: list[Any] = []
        data = _read_yaml(path, problems)
        if problems:
            raise PolicyLoadError(problems[0].file, problems[0].rule, problems[0].reason)
        model = parse_model(data, str(path), catalogues)
        models[model.id] = model
    return models
