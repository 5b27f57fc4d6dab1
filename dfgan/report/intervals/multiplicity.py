"""Multiplicity: Holm's step-down within a family, and the graphical procedure of Bretz et al. (2009) that the report
uses for its gated order of questions (:func:`dfgan.report.contrasts.gate_graph`).

Both are sequentially rejective Bonferroni tests: each hypothesis holds a share of alpha; a rejected one passes its
share on (Holm: equally to the others; a graph: along its edges). Both control the family-wise error rate strongly
(the chance of rejecting any true null, whatever the others are). Each decision comes with the local level at which
the hypothesis was last tested, so that an interval at that level excludes 0 exactly when it is rejected.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dfgan.report.intervals.paired import check_level


def holm(p_values: Sequence[float | None], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Holm's step-down over the non-None p-values, in input order; None (no test) passes through.

    Each entry: ``p``, ``p_adjusted`` (sorted ascending, p_adj_(j) = max_{i<=j} min(1, (m-i+1) p_(i))),
    ``significant`` (p_adjusted < alpha) and ``step_level`` = 1 - alpha_j, where alpha_j = alpha/(m-j+1) while
    every earlier step rejected, and the first non-rejected step's alpha for all after it. An interval at
    ``step_level`` (:func:`dfgan.report.intervals.paired.adjusted_interval`) then excludes 0 exactly when Holm rejects, because its p is below
    alpha_j exactly then. Rejection is strict (p < alpha_j) to match the strict ``excludes_zero``.
    """
    check_level(alpha, "alpha")
    _check_p_values(p_values)
    tested = [index for index, p in enumerate(p_values) if p is not None]
    m = len(tested)
    # Holm is the complete graph with equal weights (Bretz et al. 2009): a rejected hypothesis passes its share on
    # equally to all others.
    transitions = [[0.0 if i == j else 1.0 / (m - 1) for j in range(m)] for i in range(m)]
    decisions = graphical([p_values[i] for i in tested], [1.0 / m] * m, transitions, alpha) if m else []
    out: list[dict[str, Any]] = [
        {"p": None, "p_adjusted": None, "significant": False, "step_level": None} for _ in p_values
    ]
    for index, decision in zip(tested, decisions):
        out[index] = {key: decision[key] for key in ("p", "p_adjusted", "significant", "step_level")}
    return out


def _check_p_values(p_values: Sequence[float | None]) -> None:
    for index, p in enumerate(p_values):
        if p is not None and not 0.0 <= float(p) <= 1.0:  # also rejects NaN
            raise ValueError(f"p-value {index} must lie in [0, 1], got {p}")


def _check_graph(weights: np.ndarray, transitions: np.ndarray) -> None:
    m = len(weights)
    if transitions.shape != (m, m):
        raise ValueError(f"transitions must be {m} x {m} for {m} weights, got {transitions.shape}")
    if (weights < 0).any() or weights.sum() > 1.0 + 1e-12:
        raise ValueError(f"weights must be non-negative and sum to at most 1, got {weights.tolist()}")
    if (transitions < 0).any() or (transitions.sum(axis=1) > 1.0 + 1e-12).any() or np.diag(transitions).any():
        raise ValueError("transitions must be non-negative, with rows summing to at most 1 and a zero diagonal")


def _reject(j: int, active: list[int], weights: np.ndarray, transitions: np.ndarray) -> None:
    """Remove hypothesis j: its weight flows along its edges and the graph is rewired around it (Bretz et al.,
    Algorithm 1), in place."""
    active.remove(j)
    new_weights = weights.copy()
    new_transitions = np.zeros_like(transitions)
    for l in active:
        new_weights[l] = weights[l] + weights[j] * transitions[j, l]
        for k in active:
            if k == l:
                continue
            denominator = 1.0 - transitions[l, j] * transitions[j, l]
            if denominator > 0:
                new_transitions[l, k] = (transitions[l, k] + transitions[l, j] * transitions[j, k]) / denominator
    new_weights[j] = 0.0
    weights[:], transitions[:] = new_weights, new_transitions


def _ratio(p: float, weight: float) -> float:
    return p / weight if weight > 0 else np.inf


def graphical(
    p_values: Sequence[float | None], weights: Sequence[float], transitions: Sequence[Sequence[float]],
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """The sequentially rejective graphical procedure (Bretz, Maurer, Brannath, Posch 2009) with Bonferroni local tests.

    ``weights[i]``: hypothesis i's initial share of ``alpha``; ``transitions[i][j]``: the part of i's share that goes
    to j once i is rejected. A None p-value (no test possible) is never rejected. Each entry: ``p``,
    ``p_adjusted`` (Algorithm 2 of the paper: reject iff < alpha), ``significant``, ``local_alpha`` (the share of
    alpha it held when rejected, or when the procedure stopped; 0: never reached, e.g. behind a closed gate) and
    ``step_level`` = 1 - local_alpha (None when 0). Rejection is strict (p < local alpha), as in :func:`holm`.
    """
    alpha = check_level(alpha, "alpha")
    _check_p_values(p_values)
    w0, g0 = np.asarray(weights, np.float64), np.asarray(transitions, np.float64)
    _check_graph(w0, g0)
    m = len(w0)
    if len(p_values) != m:
        raise ValueError(f"{len(p_values)} p-values for {m} hypotheses")
    p = np.array([1.0 if v is None else float(v) for v in p_values])

    # Algorithm 1: the decisions and each hypothesis's local level.
    w, g, active = w0.copy(), g0.copy(), list(range(m))
    local = np.zeros(m)
    while True:
        candidates = [i for i in active if p_values[i] is not None and p[i] < w[i] * alpha]
        if not candidates:
            break
        j = min(candidates, key=lambda i: (_ratio(p[i], w[i]), i))
        local[j] = w[j] * alpha
        _reject(j, active, w, g)
    rejected = set(range(m)) - set(active)
    for i in active:
        local[i] = w[i] * alpha

    # Algorithm 2: adjusted p-values (the smallest alpha at which each would be rejected).
    w, g, active = w0.copy(), g0.copy(), list(range(m))
    adjusted = np.ones(m)
    running = 0.0
    while active:
        j = min(active, key=lambda i: (_ratio(p[i], w[i]), i))
        running = max(running, min(1.0, _ratio(p[j], w[j])))
        adjusted[j] = running
        _reject(j, active, w, g)

    return [
        {"p": None if p_values[i] is None else float(p[i]),
         "p_adjusted": None if p_values[i] is None else float(adjusted[i]),
         "significant": i in rejected, "local_alpha": float(local[i]),
         "step_level": None if local[i] <= 0 else 1.0 - float(local[i])}
        for i in range(m)
    ]


def gate_graph(chains: Sequence[int]) -> tuple[list[float], list[list[float]]]:
    """The report's gated order of questions as a graph: ``chains[s]`` key secondaries follow primary s.

    Hypotheses are ordered: the k primaries (the pre-declared contrast at each declared size), then primary 0's
    secondaries in their fixed order, then primary 1's, ... Each primary starts with alpha / k. A rejected primary
    passes its whole share to its first secondary, which passes it to the next; the last secondary of a size (or a
    primary without secondaries) passes it on equally to the other primaries, as Holm would. So a secondary is tested
    only at sizes where the primary was significant and after every earlier secondary of that size, and alpha that
    a whole chain has used is recycled to the other sizes.
    """
    k = len(chains)
    if k == 0:
        return [], []
    if any(int(n) != n or n < 0 for n in chains):
        raise ValueError(f"chain lengths must be non-negative integers, got {list(chains)}")
    starts = np.cumsum([k, *chains[:-1]]).tolist()
    m = k + int(sum(chains))
    weights = [1.0 / k] * k + [0.0] * (m - k)
    transitions = [[0.0] * m for _ in range(m)]

    def to_other_primaries(node: int, size: int) -> None:
        for other in range(k):
            if other != size:
                transitions[node][other] = 1.0 / (k - 1)

    for size, length in enumerate(chains):
        chain = [size] + list(range(starts[size], starts[size] + int(length)))
        for here, after in zip(chain, chain[1:]):
            transitions[here][after] = 1.0
        to_other_primaries(chain[-1], size)
    return weights, transitions
