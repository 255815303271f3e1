"""Load and lint the policy directory: ``purposes.yaml`` plus ``agreements/*.yaml``.

Rules are data, validated at load: every problem names the file, a short stable rule (the
key path, such as ``fields.card_number.transform``, ``purpose`` or ``valid_until``) and the
reason. Unknown keys and duplicate YAML keys are errors, so a typo can neither widen nor
narrow an agreement silently. :func:`load_policies` raises on the first problem;
:func:`lint_policies` returns them all (``pgw policy lint``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.sdk._schema import Schema
from gateway.errors import ConfigError
from gateway.policy._decide import PolicySet
from gateway.policy._model import Agreement, Purpose
from gateway.policy._parse import parse_agreement


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in one policy file."""

    file: str
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}: {self.reason}"


class PolicyLoadError(ConfigError):
    """A policy file is invalid; ``file``, ``rule`` and ``reason`` say where and why."""

    def __init__(self, file: str, rule: str, reason: str) -> None:
        super().__init__(f"{file}: {rule}: {reason}")
        self.file, self.rule, self.reason = file, rule, reason


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that rejects a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def default_catalogues() -> dict[str, Schema]:
    """The installed partners' catalogues (entry points ``pgw.connectors``), by partner id."""
    from connectors.registry import schemas  # local: plug-ins import the SDK, which imports us

    return schemas()


def _read_yaml(path: Path, problems: list[PolicyProblem]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(PolicyProblem(str(path), "file", f"cannot read: {exc}"))
    except yaml.YAMLError as exc:
        problems.append(PolicyProblem(str(path), "yaml", " ".join(str(exc).split())))
    return None


def _parse_purposes(path: Path, problems: list[PolicyProblem]) -> dict[str, Purpose]:
    count = len(problems)
    data = _read_yaml(path, problems)
    if len(problems) > count:
        return {}
    if not isinstance(data, dict) or set(data) != {"purposes"} or not isinstance(
            data["purposes"], dict):
        problems.append(PolicyProblem(str(path), "purposes",
                                      "want one key 'purposes' mapping name -> entry"))
        return {}
    out: dict[str, Purpose] = {}
    for name, entry in data["purposes"].items():
        rule = f"purposes.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            problems.append(PolicyProblem(str(path), rule, "want a lowercase-hyphenated name"))
        elif not isinstance(entry, dict) or set(entry) != {"description", "legal_basis"}:
            problems.append(PolicyProblem(str(path), rule,
                                          "want exactly the keys description, legal_basis"))
        elif not all(isinstance(v, str) and v.strip() for v in entry.values()):
            problems.append(PolicyProblem(str(path), rule, "description and legal_basis "
                                          "must be non-empty strings"))
        else:
            out[name] = Purpose(name, entry["description"].strip(), entry["legal_basis"].strip())
    return out


def _cross_check(agreements: list[Agreement], problems: list[PolicyProblem]) -> list[Agreement]:
    """Drop (and report) duplicate ids and overlapping agreements; keep the earlier file."""
    kept: list[Agreement] = []
    for a in agreements:
        clash = None
        for b in kept:
            if a.id == b.id:
                clash = ("id", f"duplicate agreement id {a.id!r} (also in {b.source})")
            elif ((a.requester_org, a.purpose, a.partner) == (b.requester_org, b.purpose,
                                                             b.partner)
                  and set(a.roles) & set(b.roles)
                  and a.valid_from <= b.valid_until and b.valid_from <= a.valid_until):
                shared = ",".join(sorted(set(a.roles) & set(b.roles)))
                clash = ("overlap", f"overlaps {b.label} ({b.source}): same org "
                         f"{a.requester_org}, purpose {a.purpose}, partner {a.partner}, "
                         f"role {shared} from {max(a.valid_from, b.valid_from)} to "
                         f"{min(a.valid_until, b.valid_until)}")
            if clash:
                break
        if clash:
            problems.append(PolicyProblem(a.source, *clash))
        else:
            kept.append(a)
    return kept


def _collect(directory: str | Path,
             catalogues: Mapping[str, Schema]) -> tuple[PolicySet, list[PolicyProblem]]:
    root = Path(directory)
    problems: list[PolicyProblem] = []
    if not root.is_dir():
        problems.append(PolicyProblem(str(root), "directory", "not a directory"))
        return PolicySet({}, (), catalogues), problems
    purposes = _parse_purposes(root / "purposes.yaml", problems)
    agreements: list[Agreement] = []
    folder = root / "agreements"
    paths = sorted(folder.iterdir()) if folder.is_dir() else []
    for path in paths:
        if path.name.startswith("."):
            continue
        if path.suffix != ".yaml" or not path.is_file():
            problems.append(PolicyProblem(str(path), "file",
                                          "not an agreement: want one *.yaml file each"))
            continue
        count = len(problems)
        data = _read_yaml(path, problems)
        if len(problems) == count:
            found: list[tuple[str, str]] = []
            agreement = parse_agreement(data, str(path), purposes, catalogues, found)
            problems.extend(PolicyProblem(str(path), rule, reason) for rule, reason in found)
            if agreement is not None:
                agreements.append(agreement)
    kept = _cross_check(agreements, problems)
    return PolicySet(purposes, tuple(kept), catalogues), problems


def lint_policies(directory: str | Path,
                  catalogues: Mapping[str, Schema] | None = None) -> list[PolicyProblem]:
    """Every problem in the policy directory (empty when it is clean)."""
    return _collect(directory, default_catalogues() if catalogues is None else catalogues)[1]


def load_policies(directory: str | Path,
                  catalogues: Mapping[str, Schema] | None = None) -> PolicySet:
    """Parse the policy directory; raise :class:`PolicyLoadError` for the first problem."""
    policies, problems = _collect(directory,
                                  default_catalogues() if catalogues is None else catalogues)
    if problems:
        first = problems[0]
        raise PolicyLoadError(first.file, first.rule, first.reason)
    return policies
