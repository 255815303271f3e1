"""Which audit entries an officer's search selects: one definition for the gateway's
``Search`` RPC and for ``pgw audit search --archive`` over an export, offline.

Criteria are the requester org, purpose, partner, decision, a time window and a person. A person
is searched by their keyed forms (:func:`person_forms`, made with the audit pseudonym key, never
stored): the HMAC pseudonym that inline entries (and ``"v": 2`` sets) list, and the set item
that ``"v": 3`` subject sets hold. An entry answers everything but the person by itself
(:func:`matches`); whether it names the person may need its subject set, which
:func:`names_person` reads only then, through the caller's checked reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gateway.audit import holds_pseudonym, set_item, subject_pseudonym
from gateway.audit._archive import ArchivedEntry, parse_archive
from gateway.audit._subject_set import VERSION_HMAC_SET, SubjectSet
from gateway.errors import FieldViolation, InvalidArgument
from gateway.validate import normalize_person_id

__all__ = ["DECISIONS", "matches", "names_person", "person_forms", "search_archive",
           "search_criteria"]

DECISIONS = ("allow", "deny", "error")


def person_forms(key: bytes, subject: str) -> dict[str, Any]:
    """The keyed forms of a normalised id that entries and sets name people by."""
    return {"pseudonym": subject_pseudonym(key, subject), "set_item": set_item(key, subject)}


def search_criteria(forms: Callable[[str], dict[str, Any]], *, requester_org: str = "",
                    purpose: str = "", partner: str = "", decision: str = "",
                    time_from: str = "", time_to: str = "", subject: str = "") -> dict[str, Any]:
    """The criteria of a search (empty ones left out); ``forms`` makes a person's keyed forms.
    ``InvalidArgument`` names a bad decision, time or id (the id is never quoted)."""
    if decision and decision not in DECISIONS:
        raise InvalidArgument(FieldViolation("decision", f"want one of {', '.join(DECISIONS)}"))
    criteria: dict[str, Any] = {
        "requester_org": requester_org, "purpose": purpose, "partner": partner,
        "decision": decision, "time_from": _instant("time_from", time_from),
        "time_to": _instant("time_to", time_to)}
    if subject:
        try:
            normalised = normalize_person_id(subject)
        except ValueError as exc:
            raise InvalidArgument(FieldViolation("subject", f"not a GB 11643 id: {exc}")) \
                from None
        criteria.update(forms(normalised))
    return {k: v for k, v in criteria.items() if v is not None and v != ""}


def _instant(field: str, text: str) -> datetime | None:
    """An RFC 3339 bound as an aware UTC datetime (None when empty)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(FieldViolation(field, "want an RFC 3339 time such as "
                                             "2026-11-25T08:00:00+08:00")) from None
    if moment.tzinfo is None:
        raise InvalidArgument(FieldViolation(field, "want a time with an offset (Z or +08:00)"))
    return moment.astimezone(UTC)


def matches(entry: dict[str, Any], criteria: dict[str, Any]) -> bool:
    """The criteria an entry answers by itself (all but the person: :func:`names_person`)."""
    when = datetime.fromisoformat(entry["time"]) if ("time_from" in criteria
                                                      or "time_to" in criteria) else None
    for key, want in criteria.items():
        if key == "partner" and want not in entry.get("partners", []):
            return False
        if key == "time_from" and when is not None and when < want:
            return False
        if key == "time_to" and when is not None and when >= want:
            return False
        if key in ("requester_org", "purpose", "decision") and entry.get(key) != want:
            return False
    return True


def names_person(entry: dict[str, Any], criteria: dict[str, Any],
                 read_set: Callable[[], bytes]) -> bool:
    """Whether the entry names the searched person (True when none is searched): in its inline
    list, else in its subject set, read with ``read_set`` (which checks it)."""
    want = criteria.get("pseudonym")
    if want is None:
        return True
    if "subject_set" not in entry:
        return want in entry.get("subject_pseudonyms", [])
    item = want if entry.get("v") == VERSION_HMAC_SET else criteria["set_item"]
    return holds_pseudonym(read_set(), item)


def search_archive(text: str, criteria: dict[str, Any]) -> Iterator[ArchivedEntry]:
    """The entries of an export archive that the criteria select, in archive order.

    ``ValueError`` names the entry whose set the person's search needs and the archive lacks
    (written with ``--digests-only``) or whose set does not hash to its archived digest."""
    for item in parse_archive(text):
        entry = json.loads(item.entry)
        if matches(entry, criteria) and names_person(entry, criteria,
                                                     partial(_archived_set, item, entry)):
            yield item


def _archived_set(item: ArchivedEntry, entry: dict[str, Any]) -> bytes:
    if item.subject_set is None:
        raise ValueError(f"entry {item.index}: the archive has no subject set for it (exported "
                         "with --digests-only?), so it cannot say who was in it")
    problem = SubjectSet.of_entry(entry).problem(item.subject_set)
    if problem is not None:
        raise ValueError(f"entry {item.index}: in your archive: {problem}")
    return item.subject_set
