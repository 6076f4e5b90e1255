"""Which pairs of a class handed in the same network, or one made from another's (pure).

    find_pairs(members, predictions, labels, weights=..., cache=...) -> Found

The cheap evidence is computed for every pair at once: shared weight digests and sketched weight
cosines (``fingerprint``), and the behaviour statistics (``behaviour.pair_statistics``), ranked
against the class's own distribution by a robust z-score (unrelated networks already agree on most images, and how
much depends on the homework). The costly evidence, a bootstrap interval of the error kappa and
weight matching, is computed only for the candidate pairs, and kept in ``cache`` (keyed by both
checkpoints' digests) so a re-run computes it only for pairs with a new or changed submission.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from grader.similarity.behaviour import PairStats, bootstrap_kappa, pair_statistics
from grader.similarity.fingerprint import PrintMatch, WeightPrint, compare_prints
from grader.similarity.matching import match_weights

KINDS = ("exact copy", "reordered copy", "derived (weights)", "derived (behaviour)")


@dataclass(frozen=True)
class Thresholds:
    """When a pair is a candidate, and when it is flagged (calibrated by bench/bench_similarity.py).

    Attributes:
        candidate_z: robust z of the error kappa that earns a pair the costly evidence.
        flag_z: robust z of the error kappa that flags a pair by behaviour, with ``flag_kappa``.
        flag_kappa: the kappa interval's lower end that a behaviour flag needs besides ``flag_z``.
        sure_kappa: a lower end that flags a pair by behaviour whatever the class (tiny classes).
        aligned: weight-matching cosine that flags a same-architecture pair by its weights.
        sketch: the sketched cosine of two same-architecture networks' weights as saved that
            earns a pair weight matching (networks trained apart sit near 0).
        min_spread: floor on the robust spread of kappa (1.4826 x MAD), so that a class of near
            twins does not make every small difference look unusual.
        draws: bootstrap resamples of the test images for the kappa interval.
        matchings: weight matchings one run may compute (a second each for the homework
            network); the candidates past it are compared without, and matched by the next run.
    """

    candidate_z: float = 3.0
    flag_z: float = 5.0
    flag_kappa: float = 0.75
    sure_kappa: float = 0.9
    aligned: float = 0.8
    sketch: float = 0.3
    min_spread: float = 0.02
    draws: int = 200
    matchings: int = 300


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Member:
    """One network compared.

    Attributes:
        key: the student's gradebook id.
        origin: "" for a student of this batch; else where it came from ("reference ...", the
            compared folder), said in every row.
        sha256: the submission's digest (the cache's key).
        weights: its weight fingerprint, or None when the weights could not be read.
        note: why the weights were not read (None when they were).
    """

    key: str
    origin: str
    sha256: str
    weights: WeightPrint | None = None
    note: str | None = None


@dataclass(frozen=True)
class Evidence:
    """The numbers behind one pair (None: not computed for it).

    Attributes:
        agreement: share of test images with the same prediction.
        kappa: Cohen's kappa of the error indicators; ``kappa_ci`` its bootstrap 95% interval.
        same_wrong: of the images both get wrong, the share with the same wrong label.
        both_wrong: how many images both get wrong.
        z: robust z of ``kappa`` in the class's distribution (how unusual).
        exact, reordered: shares of the smaller network's weights found identical, in order or reordered.
        sketch: the sketched cosine of the weights as saved (same architecture only).
        as_saved, aligned: weight cosine similarity before and after weight matching.
        weights_note: why weight evidence is missing.
    """

    agreement: float | None = None
    kappa: float | None = None
    kappa_ci: tuple[float, float] | None = None
    same_wrong: float | None = None
    both_wrong: int | None = None
    z: float | None = None
    exact: float | None = None
    reordered: float | None = None
    sketch: float | None = None
    as_saved: float | None = None
    aligned: float | None = None
    weights_note: str | None = None


@dataclass(frozen=True)
class Pair:
    """A flagged pair: ``a`` and ``b`` (members), the strongest ``kind`` of evidence (``KINDS``),
    its ``score`` (share of weights, cosine, or kappa), how unusual (robust z) and the evidence."""

    a: Member
    b: Member
    kind: str
    score: float
    evidence: Evidence


@dataclass
class Found:
    """What ``find_pairs`` found: the flagged pairs (strongest kind first, then score), the class's
    kappa median and spread, the candidates examined, and the cache to keep for the next run."""

    pairs: list[Pair]
    median: float | None
    spread: float | None
    candidates: int
    cache: dict = field(default_factory=dict)


def find_pairs(members: list[Member], predictions: np.ndarray | None, labels: np.ndarray | None, *,
               weights: Callable[[int], list[np.ndarray] | None] = lambda i: None, cache: dict | None = None,
               thresholds: Thresholds = THRESHOLDS) -> Found:
    """Flag the pairs of ``members`` whose weights or behaviour say one derives from the other.

    Args:
        members: the networks, this batch's and any compared ones (``Member.origin``).
        predictions: (s, n) predicted class per member and test image, -1 in a row with no
            logits; None when no member has any.
        labels: (n,) the test labels.
        weights: member index -> its tensors in file order (read only for candidate pairs).
        cache: costly evidence from an earlier run, by ``pair_key``; the result's cache holds
            what this run used or computed.
    Returns:
        the flagged pairs; never a pair of two compared (non-batch) members.
    """
    cache, kept = cache or {}, {}
    stats, has = _behaviour(predictions, labels, len(members))
    own = [i for i, m in enumerate(members) if not m.origin]
    median, spread = _spread(stats.kappa if stats else None, [i for i in own if has[i]], thresholds)
    pairs, candidates, budget = [], 0, [thresholds.matchings]
    for i, j in _screened(members, stats, has, median, spread, thresholds):
        evidence, match = _cheap(members[i], members[j], stats if has[i] and has[j] else None, i, j,
                                 median, spread)
        if not _is_candidate(evidence, match, thresholds):
            continue
        candidates += 1
        key = pair_key(members[i].sha256, members[j].sha256)
        costly = cache.get(key) or _costly(i, j, predictions, labels, weights if _alike(members[i], members[j], match)
                                           else None, budget, thresholds)
        if costly.get("matched") != "skipped":  # kept for the next run, unless it still owes a matching
            kept[key] = costly
        pair = _judge(members[i], members[j], _with_costly(evidence, costly), match, thresholds)
        if pair:
            pairs.append(pair)
    pairs.sort(key=lambda p: (KINDS.index(p.kind), -p.score, p.a.key, p.b.key))
    return Found(pairs, median, spread, candidates, kept)


def pair_key(sha_a: str, sha_b: str) -> str:
    """The cache's key of a pair: both digests, in sorted order."""
    return "|".join(sorted((sha_a, sha_b)))


def _behaviour(predictions: np.ndarray | None, labels: np.ndarray | None,
               count: int) -> tuple[PairStats | None, list[bool]]:
    """Every pair's statistics, and which members have predictions."""
    if predictions is None or labels is None:
        return None, [False] * count
    has = [bool(row[0] >= 0) for row in predictions]
    return pair_statistics(np.where(predictions < 0, 0, predictions), labels), has


def _spread(kappa: np.ndarray | None, rows: list[int], thresholds: Thresholds) -> tuple[float | None, float | None]:
    """The median and robust spread (1.4826 x MAD, at least ``min_spread``) of kappa over ``rows``' pairs."""
    if kappa is None or len(rows) < 2:
        return None, None
    values = kappa[np.ix_(rows, rows)][np.triu_indices(len(rows), 1)]
    median = float(np.median(values))
    return median, max(1.4826 * float(np.median(np.abs(values - median))), thresholds.min_spread)


def _screened(members: list[Member], stats: PairStats | None, has: list[bool], median, spread,
              thresholds: Thresholds) -> list[tuple[int, int]]:
    """The pairs (i < j, not both compared members) that may be candidates, found for the whole
    class at once: a weight digest in common, a sketched cosine over ``thresholds.sketch`` between
    two networks of one architecture, or an unusual or high kappa."""
    s = len(members)
    near = np.zeros((s, s), dtype=bool)
    holders: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        for digest in {d for t in (m.weights.tensors if m.weights else ()) for d in (t.exact, t.sorted)}:
            holders.setdefault(digest, []).append(i)
    for held in holders.values():
        near[np.ix_(held, held)] = True
    sketched = [i for i, m in enumerate(members) if m.weights and m.weights.sketch]
    if sketched:
        sketches = np.array([members[i].weights.sketch for i in sketched])
        kinds = np.array([members[i].weights.architecture for i in sketched])
        near[np.ix_(sketched, sketched)] |= (sketches @ sketches.T >= thresholds.sketch) & (kinds[:, None] == kinds)
    if stats is not None:
        rows = np.array(has, dtype=bool)
        unusual = (stats.kappa - median) / spread >= thresholds.candidate_z if spread else False
        near |= (unusual | (stats.kappa >= thresholds.sure_kappa)) & rows[:, None] & rows[None, :]
    compared = np.array([bool(m.origin) for m in members], dtype=bool)
    near &= ~(compared[:, None] & compared[None, :])
    i, j = np.nonzero(np.triu(near, 1))
    return list(zip(i.tolist(), j.tolist()))


def _cheap(a: Member, b: Member, stats: PairStats | None, i: int, j: int, median, spread):
    """The evidence computed for every pair, and the weight digests' overlap (None: unknown)."""
    match = compare_prints(a.weights, b.weights) if a.weights and b.weights else None
    sketched = None
    if match and a.weights.sketch and a.weights.architecture == b.weights.architecture:
        sketched = float(np.dot(a.weights.sketch, b.weights.sketch))
    evidence = Evidence(exact=match.exact if match else None, reordered=match.reordered if match else None,
                        sketch=sketched, weights_note=a.note or b.note)
    if stats is not None:
        kappa = float(stats.kappa[i, j])
        evidence = dataclasses.replace(
            evidence, agreement=float(stats.agreement[i, j]), kappa=kappa, same_wrong=float(stats.same_wrong[i, j]),
            both_wrong=int(stats.both_wrong[i, j]), z=(kappa - median) / spread if spread else None)
    return evidence, match


def _is_candidate(evidence: Evidence, match: PrintMatch | None, thresholds: Thresholds) -> bool:
    if (match is not None and match.kind()) or (evidence.sketch or 0.0) >= thresholds.sketch:
        return True
    if evidence.kappa is None:
        return False
    return (evidence.z is not None and evidence.z >= thresholds.candidate_z) or evidence.kappa >= thresholds.sure_kappa


def _alike(a: Member, b: Member, match: PrintMatch | None) -> bool:
    """Whether weight matching can say more: one architecture, and not already an exact copy."""
    return bool(a.weights and b.weights and a.weights.architecture == b.weights.architecture
                and not (match and match.kind() == "exact copy"))


def _costly(i: int, j: int, predictions, labels, weights, budget: list[int], thresholds: Thresholds) -> dict:
    """The bootstrap interval and (``weights`` given) the weight matching of one candidate pair,
    as the cache keeps them; ``"skipped"`` for a matching over the run's ``budget``."""
    found: dict = {}
    if predictions is not None and predictions[i][0] >= 0 and predictions[j][0] >= 0:
        found["kappa_ci"] = list(bootstrap_kappa(predictions[i], predictions[j], labels, draws=thresholds.draws,
                                                 seed=i * 7919 + j))
    if weights is not None and budget[0] <= 0:
        found["matched"] = "skipped"
    elif weights is not None:
        budget[0] -= 1
        a, b = weights(i), weights(j)
        matched = match_weights(a, b) if a is not None and b is not None else None
        found["matched"] = [matched.as_saved, matched.aligned] if matched else None
    return found


def _with_costly(evidence: Evidence, costly: dict) -> Evidence:
    matched = costly.get("matched")
    matched = matched if isinstance(matched, list) else None
    ci = costly.get("kappa_ci")
    return dataclasses.replace(evidence, kappa_ci=tuple(ci) if ci else None,
                               as_saved=matched[0] if matched else None, aligned=matched[1] if matched else None)


def _judge(a: Member, b: Member, evidence: Evidence, match: PrintMatch | None, thresholds: Thresholds) -> Pair | None:
    """The pair with its strongest kind of evidence, or None when nothing reaches a threshold."""
    kind = match.kind() if match else None
    if kind:
        return Pair(a, b, kind, match.exact if kind == "exact copy" else match.reordered, evidence)
    if evidence.aligned is not None and evidence.aligned >= thresholds.aligned:
        return Pair(a, b, "derived (weights)", evidence.aligned, evidence)
    lower = evidence.kappa_ci[0] if evidence.kappa_ci else None
    if lower is not None and (lower >= thresholds.sure_kappa or (
            evidence.z is not None and evidence.z >= thresholds.flag_z and lower >= thresholds.flag_kappa)):
        return Pair(a, b, "derived (behaviour)", evidence.kappa, evidence)
    return None
