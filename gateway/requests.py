"""Validation of requester input: purposes, subjects and field selections.

Every problem becomes a google.rpc.BadRequest field violation naming the offending field
(``subjects[3]``, ``selections[0].fields[1]``); all problems of a request are reported at once.
Values are never echoed back: a bad id is described, not quoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.dispatch import ConnectorClients
from gateway.errors import FieldViolation, InvalidArgument
from gateway.pb.pgw.v1 import common_pb2
from gateway.validate import normalize_person_id

#: Hard ceiling on subjects per call, whatever an agreement allows.
MAX_SUBJECTS = 1000


def check_purpose(purpose: str, known: Iterable[str]) -> list[FieldViolation]:
    known = sorted(known)
    if not purpose:
        return [FieldViolation("purpose", "missing: name a purpose from the catalogue")]
    if purpose not in known:
        return [FieldViolation("purpose", f"unknown purpose; want one of {', '.join(known)}")]
    return []


def check_subjects(subjects: Sequence[str]) -> tuple[list[str], list[FieldViolation]]:
    """Normalised ids and the violations (one per bad id, never quoting it)."""
    if not subjects:
        return [], [FieldViolation("subjects", "missing: give at least one resident id")]
    if len(subjects) > MAX_SUBJECTS:
        return [], [FieldViolation("subjects", f"got {len(subjects)} ids, want <= {MAX_SUBJECTS}")]
    ids: list[str] = []
    problems: list[FieldViolation] = []
    for i, raw in enumerate(subjects):
        try:
            ids.append(normalize_person_id(raw))
        except ValueError as exc:
            problems.append(FieldViolation(f"subjects[{i}]", f"not a GB 11643-1999 id: {exc}"))
    if not problems and len(set(ids)) != len(ids):
        problems.append(FieldViolation("subjects", "the same id is listed twice"))
    return ids, problems


async def check_selections(selections: Sequence[common_pb2.Selection],
                           clients: ConnectorClients) -> tuple[dict[str, list[str]],
                                                               list[FieldViolation]]:
    """Partner -> fields, checked against each partner's published catalogue."""
    if not selections:
        return {}, [FieldViolation("selections", "missing: select at least one field")]
    chosen: dict[str, list[str]] = {}
    problems: list[FieldViolation] = []
    for i, sel in enumerate(selections):
        where = f"selections[{i}]"
        if sel.partner not in clients.partners:
            problems.append(FieldViolation(f"{where}.partner", "unknown partner; want one of "
                                           + ", ".join(clients.partners)))
            continue
        if sel.partner in chosen:
            problems.append(FieldViolation(f"{where}.partner", "partner selected twice"))
            continue
        if not sel.fields:
            problems.append(FieldViolation(f"{where}.fields", "missing: name at least one field"))
            continue
        catalogue = await clients.catalogue(sel.partner)
        for j, name in enumerate(sel.fields):
            if name not in catalogue.fields:
                problems.append(FieldViolation(f"{where}.fields[{j}]",
                                               f"not a field of the {sel.partner} catalogue"))
        if len(set(sel.fields)) != len(sel.fields):
            problems.append(FieldViolation(f"{where}.fields", "a field is named twice"))
        chosen[sel.partner] = list(sel.fields)
    return chosen, problems


def raise_if(problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(problems)
