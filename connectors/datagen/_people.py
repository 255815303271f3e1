"""The synthetic population: latent facts shared by every partner's records.

Each :class:`Person` carries what more than one partner must agree on (birth year, degree,
income, employment history) so that the three databases describe the same people
consistently; partner-specific details are drawn later, in ``_records``.
"""

from __future__ import annotations

import datetime as _dt
import random
from dataclasses import dataclass
from itertools import accumulate

from connectors.datagen import _catalog as cat
from gateway.validate import person_id_check_char

#: The month the data describes ("now"), as a month index ``year * 12 + month - 1``.
REFERENCE_MONTH = 2026 * 12 + 10 - 1
_FIRST_BIRTH = _dt.date(1960, 1, 1).toordinal()
_BIRTH_SPAN = _dt.date(2004, 12, 31).toordinal() - _FIRST_BIRTH + 1
_STATUS = ("active", "suspended", "terminated")
_STATUS_CW = tuple(accumulate((85, 8, 7)))
_REGIONS = tuple(code for code, _ in cat.BIRTH_REGIONS)
_REGION_CW = tuple(accumulate(w for _, w in cat.BIRTH_REGIONS))
_SURNAME_CW = tuple(accumulate(1.0 / (rank + 3) for rank in range(len(cat.SURNAMES))))
_MALE_POOL = cat.GIVEN_MALE + cat.GIVEN_NEUTRAL
_FEMALE_POOL = cat.GIVEN_FEMALE + cat.GIVEN_NEUTRAL
#: Degree shares (none, associate, bachelor, master, doctor) by birth cohort.
_DEGREE_CW = {
    1975: tuple(accumulate((55, 20, 20.5, 4, 0.5))),
    1990: tuple(accumulate((30, 24, 36, 8.5, 1.5))),
    2004: tuple(accumulate((22, 26, 40, 10, 2))),
}
_GRAD_JITTER = (-1, 0, 0, 0, 0, 1, 1, 2, 3)


@dataclass(slots=True)
class Person:
    """Latent facts about one synthetic person (never written out as such)."""

    person_id: str
    name: str
    birth_year: int
    degree: int               # 0-4, see ``catalog.DEGREES``
    graduation_year: int      # 0 when degree == 0
    income: float             # typical monthly pay in CNY
    in_social_security: bool
    in_education: bool
    in_bank: bool
    status: str               # insured status; "" when not insured here
    last_month: int           # month index of the last contribution / regular pay
    benefit: bool             # receives unemployment benefit
    paid: bool                # receives payroll up to the reference month regardless


def _degree(rng: random.Random, birth_year: int) -> tuple[int, int]:
    cohort = 1975 if birth_year <= 1975 else 1990 if birth_year <= 1990 else 2004
    level = rng.choices(range(5), cum_weights=_DEGREE_CW[cohort])[0]
    while level:
        year = birth_year + cat.GRADUATION_AGE[level] + rng.choice(_GRAD_JITTER)
        if year <= 2026:
            return level, year
        level -= 1  # too young for that degree yet
    return 0, 0


def _employment(rng: random.Random) -> tuple[str, int, bool, bool]:
    """Insured status, last contribution month, unemployment benefit, still paid."""
    status = rng.choices(_STATUS, cum_weights=_STATUS_CW)[0]
    if status == "active":
        last = REFERENCE_MONTH if rng.random() < 0.92 else REFERENCE_MONTH - 1
        benefit = rng.random() < 0.006          # inconsistent record: fraud pattern
        return status, last, benefit, True
    if status == "suspended":
        last = REFERENCE_MONTH - rng.randint(1, 18)
        benefit = rng.random() < 0.25
    else:
        last = REFERENCE_MONTH - rng.randint(3, 120)
        benefit = rng.random() < 0.30
    # Some claimants keep drawing a salary elsewhere: the HPF withdrawal fraud pattern.
    paid = rng.random() < (0.15 if benefit else 0.20)
    return status, last, benefit, paid


def make_people(rng: random.Random, n: int) -> list[Person]:
    """``n`` people with unique GB 11643-valid ids, deterministic in ``rng``."""
    people: list[Person] = []
    seen: set[str] = set()
    rand, choices = rng.random, rng.choices
    while len(people) < n:
        male = rand() < 0.51
        born = _dt.date.fromordinal(_FIRST_BIRTH + rng.randrange(_BIRTH_SPAN))
        region = choices(_REGIONS, cum_weights=_REGION_CW)[0]
        seq = rng.randrange(1, 500) * 2 + (1 if male else 0)
        first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{seq:03d}"
        pid = first17 + person_id_check_char(first17)
        if pid in seen:
            continue
        seen.add(pid)
        surname = choices(cat.SURNAMES, cum_weights=_SURNAME_CW)[0]
        pool = _MALE_POOL if male else _FEMALE_POOL
        given = rng.choice(pool) + (rng.choice(pool) if rand() < 0.7 else "")
        degree, grad = _degree(rng, born.year)
        age = 2026 - born.year
        age_factor = 0.8 if age < 30 else 1.1 if age < 45 else 1.0
        income = cat.INCOME_MEDIAN[degree] * age_factor * rng.lognormvariate(0.0, 0.38)
        status, last, benefit, paid = _employment(rng)
        in_ss = rand() < 0.85
        if not in_ss:  # not insured here: self-employed, or insured in another city
            status, last, benefit, paid = "", REFERENCE_MONTH, False, rand() < 0.7
        people.append(Person(
            person_id=pid, name=surname + given, birth_year=born.year,
            degree=degree, graduation_year=grad,
            income=min(80_000.0, max(2_000.0, income)),
            in_social_security=in_ss,
            in_education=degree > 0 or rand() < 0.03,
            in_bank=rand() < 0.75,
            status=status, last_month=last, benefit=benefit, paid=paid,
        ))
    return people
