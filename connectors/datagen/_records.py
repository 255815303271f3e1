"""Partner records built from the latent population, one tuple per row.

Each builder returns ``(person_id, *values)`` with the values in the partner catalogue's field
order (checked against the schema by ``_writer``). Booleans are stored as 0/1 and the payroll
series as JSON text, the way SQLite holds them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from itertools import accumulate

from connectors.datagen import _catalog as cat
from connectors.datagen._people import REFERENCE_MONTH, Person
from gateway.validate import credit_code_check_char, luhn_check_digit

_CREDIT_LETTERS = "ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
#: Registration authority + entity type: enterprise, individual business, co-op, institution.
_KINDS = ("91", "92", "93", "12")
_KIND_CW = tuple(accumulate((88, 7, 2, 3)))
_DISTRICTS = tuple(code for code, _ in cat.EMPLOYER_DISTRICTS)
_DISTRICT_CW = tuple(accumulate(w for _, w in cat.EMPLOYER_DISTRICTS))
_BIN_CW = tuple(accumulate(w for _, _, w in cat.CARD_BINS))
_FIRST_PAYROLL_MONTH = REFERENCE_MONTH - 11
_BONUS_OFFSET = 2026 * 12 - _FIRST_PAYROLL_MONTH  # January 2026, the year-end bonus


@dataclass(frozen=True, slots=True)
class Employer:
    code: str       # GB 32100-2015 unified social credit code
    district: str   # GB/T 2260 region code


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714 check) inside the credit-code alphabet."""
    if rng.random() < 0.55:  # codes issued since 2015 look like MA1X....
        body = "MA" + "".join(rng.choice("0123456789" + _CREDIT_LETTERS) for _ in range(6))
    else:
        body = f"{rng.randrange(10**8):08d}"
    values = (int(c) if c.isdigit() else ord(c) - 55 for c in body)  # A=10 ... Z=35
    total = sum(x * w for x, w in zip(values, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def make_employers(rng: random.Random, n: int) -> tuple[list[Employer], list[float]]:
    """``n`` distinct employers and cumulative weights for picking them (a few are large)."""
    employers: list[Employer] = []
    seen: set[str] = set()
    while len(employers) < n:
        district = rng.choices(_DISTRICTS, cum_weights=_DISTRICT_CW)[0]
        first17 = rng.choices(_KINDS, cum_weights=_KIND_CW)[0] + district + _org_code(rng)
        code = first17 + credit_code_check_char(first17)
        if code not in seen:
            seen.add(code)
            employers.append(Employer(code, district))
    return employers, list(accumulate(1.0 / (rank + 5) ** 0.8 for rank in range(n)))


def _month(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def social_security_row(
    p: Person, rng: random.Random, employers: list[Employer], employer_cw: list[float]
) -> tuple[object, ...]:
    """Name, status, employer, district, base, total and continuous months, last month, benefit."""
    employer = rng.choices(employers, cum_weights=employer_cw)[0]
    base = float(min(35_000, max(2_500, round(p.income * rng.uniform(0.65, 1.0)))))
    if p.degree:
        start = p.graduation_year * 12 + rng.randint(6, 11)
    else:
        start = (p.birth_year + rng.randint(18, 22)) * 12 + rng.randrange(12)
    start = max(start, 1995 * 12)
    if start > p.last_month:
        start = p.last_month - rng.randrange(12)
    span = p.last_month - start + 1
    total = span if rng.random() < 0.3 else rng.randint(max(1, int(span * 0.6)), span)
    continuous = total if rng.random() < 0.45 else rng.randint(1, total)
    return (p.person_id, p.name, p.status, employer.code, employer.district, base,
            total, continuous, _month(p.last_month), int(p.benefit))


def education_row(p: Person, rng: random.Random, certificates: set[str]) -> tuple[object, ...]:
    """Degree label and level, institution, major, graduation year, certificate number."""
    if p.degree == 0:
        return (p.person_id, "none", 0, None, None, None, None)
    schools = (cat.VOCATIONAL if p.degree == 1
               else cat.UNIVERSITIES if p.degree == 2 else cat.GRADUATE_SCHOOLS)
    school, school_code = rng.choice(schools)
    prefix = f"{school_code}{p.graduation_year:04d}{cat.DEGREE_CERT_DIGIT[p.degree]}"
    certificate = prefix + f"{rng.randrange(10**6):06d}"
    while certificate in certificates:
        certificate = prefix + f"{rng.randrange(10**6):06d}"
    certificates.add(certificate)
    return (p.person_id, cat.DEGREES[p.degree], p.degree, school, rng.choice(cat.MAJORS),
            p.graduation_year, certificate)


def _inflows(p: Person, rng: random.Random) -> list[float]:
    uniform = rng.uniform
    if not p.paid and not p.in_social_security:  # irregular, informal income
        return [round(p.income * uniform(0.2, 1.0), 2) if rng.random() < 0.5 else 0.0
                for _ in range(12)]
    paid_until = REFERENCE_MONTH if p.paid else p.last_month
    months = [round(p.income * uniform(0.92, 1.08), 2)
              if _FIRST_PAYROLL_MONTH + k <= paid_until else 0.0 for k in range(12)]
    if months[_BONUS_OFFSET] and rng.random() < 0.3:
        months[_BONUS_OFFSET] = round(months[_BONUS_OFFSET] + p.income * uniform(0.5, 2.0), 2)
    return months


def bank_row(p: Person, rng: random.Random, cards: set[str]) -> tuple[object, ...]:
    """Card number, 12 monthly inflows (JSON), their mean, overdue flag, outstanding loans."""
    prefix, length, _ = rng.choices(cat.CARD_BINS, cum_weights=_BIN_CW)[0]
    card = ""
    while not card or card in cards:
        body = prefix + f"{rng.randrange(10 ** (length - 7)):0{length - 7}d}"
        card = body + luhn_check_digit(body)
    cards.add(card)
    inflows = _inflows(p, rng)
    loans = 0.0
    if rng.random() < 0.45:
        if rng.random() < 0.65:  # mortgage
            loans = round(min(3e6, max(3e4, rng.lognormvariate(13.3, 0.5))), 2)
        else:                    # consumer or business loan
            loans = round(rng.uniform(3_000, 150_000), 2)
    overdue = loans > 0 and rng.random() < (0.14 if inflows[-1] == 0.0 else 0.08)
    return (p.person_id, card, json.dumps(inflows), round(sum(inflows) / 12, 2),
            int(overdue), loans)
