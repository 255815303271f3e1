"""Deterministic synthetic data for the built-in partners (social security, education, bank).

``generate`` writes one SQLite database per partner describing the same synthetic people,
with realistic identifier formats (GB 11643 ids, GB 32100 credit codes, Luhn card numbers)
and correlated facts; ``load_person_ids`` reads ids back for demos and benchmarks.
Everything is fictitious: no record describes a real person.
"""

from connectors.datagen._writer import PARTNERS, Progress, generate, load_person_ids

__all__ = ["PARTNERS", "Progress", "generate", "load_person_ids"]
