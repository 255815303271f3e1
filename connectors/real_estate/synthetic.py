"""Synthetic registry records for the standard synthetic population (deterministic in rng).

About 40% of people hold a record: ownership rises with age and income. A record holder owns
0 (sold everything), 1, 2 or 3 properties; dates fall between adulthood and October 2026;
mortgages are likelier for recent, younger buyers.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from itertools import accumulate

from connectors.sdk import SyntheticPerson

#: Changzhou districts (GB/T 2260) with weights: Tianning, Zhonglou, Xinbei, Wujin, Jintan,
#: Liyang.
DISTRICTS = ("320402", "320404", "320411", "320412", "320413", "320481")
_DISTRICT_CW = tuple(accumulate((18, 16, 24, 26, 8, 8)))
_OWNED_CW = tuple(accumulate((8, 68, 20, 4)))  # 0, 1, 2, 3 properties
_FIRST_DAY = dt.date(1998, 1, 1).toordinal()    # housing reform: market titles from 1998
_LAST_DAY = dt.date(2026, 10, 31).toordinal()


def _share(person: SyntheticPerson) -> float:
    age = 2026 - person.birth_year
    by_age = 0.05 if age < 25 else 0.25 if age < 30 else 0.45 if age < 40 else 0.55
    return min(0.9, 0.77 * by_age * (0.8 + min(person.income, 30_000) / 25_000))


def synthesize(people: Sequence[SyntheticPerson], rng: random.Random
               ) -> Iterator[tuple[object, ...]]:
    """``(person_id, properties_owned, first, last, mortgage, district)`` per record holder."""
    for p in people:
        if rng.random() >= _share(p):
            continue
        owned = rng.choices(range(4), cum_weights=_OWNED_CW)[0]
        earliest = max(_FIRST_DAY, dt.date(p.birth_year + 22, 1, 1).toordinal())
        first = rng.randint(min(earliest, _LAST_DAY), _LAST_DAY)
        last = first if owned == 1 and rng.random() < 0.8 else rng.randint(first, _LAST_DAY)
        years_since = (_LAST_DAY - first) / 365.25
        mortgage = owned > 0 and rng.random() < (0.8 if years_since < 10 else 0.35)
        yield (p.person_id, owned, dt.date.fromordinal(first).isoformat(),
               dt.date.fromordinal(last).isoformat(), int(mortgage),
               rng.choices(DISTRICTS, cum_weights=_DISTRICT_CW)[0])
