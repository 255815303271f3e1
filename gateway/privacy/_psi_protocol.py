"""ECDH-PSI protocol steps as pure functions (DESIGN.md, protocol sketches).

R is the requester, G the gateway (hub), P a partner connector. The RPC layer moves the lists;
these functions compute each party's step and check what arrives. Every job uses fresh scalars
a (R) and b (P). G sees only blinded points, list sizes and, for intersection-sum, the count.

* membership:  R ``prepare`` -> P ``respond`` -> R ``finish_membership`` (flags in R's order)
* cardinality: R ``prepare`` -> P ``respond_cardinality`` -> R ``finish_cardinality``
* intersection-sum (PJC style): R ``prepare`` -> P ``pjc_respond`` (G keeps the ciphertexts and
  forwards only ``points`` to R) -> R ``pjc_reblind`` -> G ``pjc_total`` -> R decrypts one value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.privacy._errors import BelowMinimum, PrivacyError
from gateway.privacy._he import PublicContext
from gateway.privacy._he_ops import encrypt_column, masked_total
from gateway.privacy._pool import PsiPool
from gateway.privacy._psi import Progress, PsiKey, hash_many, shuffle


@dataclass(frozen=True, eq=False)
class PsiRequesterState:
    """R's secret for one job: its scalar and how many items it sent. Keep it in R's process."""

    key: PsiKey
    size: int


@dataclass(frozen=True)
class PjcReply:
    """P's intersection-sum answer. G keeps ``values``; it must never be forwarded to R."""

    double_blinded: list[bytes]  # (H(x)^a)^b, shuffled
    points: list[bytes]  # H(y)^b, shuffled
    values: list[bytes]  # CKKS chunks: slot j holds v_y of points[j]


def prepare(items: Sequence[bytes], *, pool: PsiPool | None = None,
            progress: Progress | None = None) -> tuple[PsiRequesterState, list[bytes]]:
    """R: H(x)^a for each x, in R's order, with a fresh a."""
    key = PsiKey.generate()
    return PsiRequesterState(key, len(items)), key.blind_many(hash_many(items), pool=pool,
                                                               progress=progress)


def _partner(blinded: Sequence[bytes], items: Sequence[bytes], pool: PsiPool | None,
             progress: Progress | None) -> tuple[PsiKey, list[bytes], list[bytes]]:
    key = PsiKey.generate()
    double = key.blind_many(blinded, pool=pool, progress=progress)
    own = key.blind_many(hash_many(items), pool=pool)
    return key, double, own


def respond(blinded_from_requester: Sequence[bytes], own_items: Sequence[bytes], *,
            pool: PsiPool | None = None,
            progress: Progress | None = None) -> tuple[list[bytes], list[bytes]]:
    """P (membership): ((H(x)^a)^b in R's order, H(y)^b for distinct y shuffled)."""
    _, double, own = _partner(blinded_from_requester, sorted(set(own_items)), pool, progress)
    return double, shuffle(own)


def respond_cardinality(blinded_from_requester: Sequence[bytes], own_items: Sequence[bytes], *,
                        pool: PsiPool | None = None,
                        progress: Progress | None = None) -> tuple[list[bytes], list[bytes]]:
    """P (cardinality): as :func:`respond`, but the double-blinded list is shuffled too."""
    _, double, own = _partner(blinded_from_requester, sorted(set(own_items)), pool, progress)
    return shuffle(double), shuffle(own)


def _theirs(state: PsiRequesterState, double_blinded: Sequence[bytes],
            partner_blinded: Sequence[bytes], pool: PsiPool | None) -> set[bytes]:
    if len(double_blinded) != state.size:
        raise PrivacyError(f"double-blinded list: got {len(double_blinded)} points, "
                           f"want {state.size}")
    return set(state.key.blind_many(partner_blinded, pool=pool))


def finish_membership(state: PsiRequesterState, double_blinded: Sequence[bytes],
                      partner_blinded: Sequence[bytes], *,
                      pool: PsiPool | None = None) -> list[bool]:
    """R: for each of its own items, in its order, whether P holds it."""
    theirs = _theirs(state, double_blinded, partner_blinded, pool)
    return [point in theirs for point in double_blinded]


def finish_cardinality(state: PsiRequesterState, double_blinded: Sequence[bytes],
                       partner_blinded: Sequence[bytes], *, pool: PsiPool | None = None) -> int:
    """R: how many distinct items the two sets share, and nothing else."""
    return len(set(double_blinded) & _theirs(state, double_blinded, partner_blinded, pool))


def pjc_respond(blinded_from_requester: Sequence[bytes], own: Sequence[tuple[bytes, float]],
                public_ctx: PublicContext, *, pool: PsiPool | None = None,
                progress: Progress | None = None) -> PjcReply:
    """P (intersection-sum): values of a repeated item are added; pairs shuffled together."""
    totals: dict[bytes, float] = {}
    for item, value in own:
        totals[item] = totals.get(item, 0.0) + float(value)
    pairs = shuffle(list(totals.items()))
    _, double, points = _partner(blinded_from_requester, [i for i, _ in pairs], pool, progress)
    values = encrypt_column(public_ctx, [v for _, v in pairs]) if pairs else []
    return PjcReply(shuffle(double), points, values)


def pjc_reblind(state: PsiRequesterState, points: Sequence[bytes], *,
                pool: PsiPool | None = None) -> list[bytes]:
    """R: (H(y)^b)^a for the points G forwarded, in the same order."""
    return state.key.blind_many(points, pool=pool)


def pjc_total(sum_ctx: PublicContext, reply: PjcReply, reblinded: Sequence[bytes], *,
              min_count: int) -> tuple[bytes, int]:
    """G: Enc(sum of v_y over the intersection) and its size; refused below ``min_count``.

    G holds no secret key: it matches the two double-blinded lists and adds ciphertext slots.
    """
    if len(reblinded) != len(reply.points):
        raise PrivacyError(f"re-blinded points: got {len(reblinded)}, want {len(reply.points)}")
    if len(set(reblinded)) != len(reblinded):  # P's points are distinct: R must not repeat one
        raise PrivacyError("re-blinded points: got repeated points, want distinct points")
    if min_count < 1:
        raise PrivacyError(f"min_count: got {min_count}, want at least 1")
    requester = set(reply.double_blinded)
    positions = [j for j, point in enumerate(reblinded) if point in requester]
    if len(positions) < min_count:
        raise BelowMinimum("intersection size", got=len(positions), minimum=min_count)
    return masked_total(sum_ctx, reply.values, positions), len(positions)
