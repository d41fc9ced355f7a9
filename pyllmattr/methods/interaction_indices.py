"""Exact Shapley interaction indices from the values of all 2^n coalitions.

Every index here is a weighted sum of the game's Möbius coefficients (its Harsanyi
dividends) m(T) = sum over L ⊆ T of (-1)^(|T| - |L|) v(L), which one fast Möbius
transform gives for all T at once. For a coalition S of size s <= k (the order):

- SII (Grabisch and Roubens): sum over T ⊇ S of m(T) / (|T| - s + 1); at s = 1 the
  Shapley value.
- k-SII (Bordt and von Luxburg): SII corrected with Bernoulli numbers B_j,
  sum over j <= k - s of B_j times the SII of S joined with j other players; all
  values up to order k sum to v(N) - v(∅).
- STII (Shapley-Taylor, Sundararajan et al.): m(S) below the top order; at s = k
  every m(T), T ⊇ S, shared equally among the C(|T|, k) size-k subsets of T.
- FSII (Faith-Shap, Tsai et al., their Theorem 19): m(S) plus a correction from the
  coefficients of size > k.

Values may be vectors (one column per output: the whole target and each target
token), so per-token interactions come from the same scores. shapiq's ExactComputer
is the reference these formulas are tested against.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np

INDICES = ("SII", "k-SII", "STII", "FSII")


def all_coalitions(n: int) -> np.ndarray:
    """Every subset of n features as a boolean (2^n, n) mask; row r holds the bits of r."""
    rows = np.arange(2**n)
    return ((rows[:, None] >> np.arange(n)) & 1).astype(bool)


def moebius(values: np.ndarray) -> np.ndarray:
    """The Möbius transform of v over subsets indexed by bit pattern (rows of ``values``)."""
    m = np.array(values, dtype=float, copy=True)
    rows = np.arange(len(m))
    for bit in range(int(np.log2(len(m)))):
        has = (rows >> bit) & 1 == 1
        m[has] -= m[rows[has] ^ (1 << bit)]
    return m


def coalitions_up_to(n: int, order: int) -> list[tuple[int, ...]]:
    """The sorted tuples of 1..order features, smallest first."""
    return [c for size in range(1, order + 1) for c in combinations(range(n), size)]


def exact_interactions(
    values: np.ndarray, order: int, index: str
) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The ``index`` of every coalition of 1..``order`` features.

    ``values`` is (2^n, n_outputs): v of each subset, row r the subset with the bits of r.
    Returns the coalitions (sorted tuples) and their values, (n_coalitions, n_outputs).

    Example:
        >>> v = np.array([[0.0], [1.0], [2.0], [5.0]])  # v({0})=1, v({1})=2, v({0,1})=5
        >>> sets, phi = exact_interactions(v, 2, "k-SII")
        >>> dict(zip(sets, phi[:, 0].tolist()))
        {(0,): 1.0, (1,): 2.0, (0, 1): 2.0}
    """
    if index not in INDICES:
        raise ValueError(f"unknown interaction index {index!r}; use one of {list(INDICES)}")
    n = int(np.log2(len(values)))
    m = moebius(values)
    sizes = _popcount(n)
    sets = coalitions_up_to(n, order)
    if index == "k-SII":
        return sets, _k_sii(m, sizes, sets, n, order)
    rule = {"SII": _sii, "STII": _stii, "FSII": _fsii}[index]
    return sets, np.array([rule(m, sizes, s, order) for s in sets])


def _popcount(n: int) -> np.ndarray:
    rows = np.arange(2**n)
    return ((rows[:, None] >> np.arange(max(n, 1))) & 1).sum(axis=1)


def _bits(coalition: tuple[int, ...]) -> int:
    return sum(1 << i for i in coalition)


def _supersets(sizes: np.ndarray, coalition: tuple[int, ...]) -> np.ndarray:
    bits = _bits(coalition)
    return (np.arange(len(sizes)) & bits) == bits


def _sii(m: np.ndarray, sizes: np.ndarray, coalition: tuple[int, ...], order: int) -> np.ndarray:
    above = _supersets(sizes, coalition)
    weights = 1.0 / (sizes[above] - len(coalition) + 1)
    return weights @ m[above]


def _stii(m: np.ndarray, sizes: np.ndarray, coalition: tuple[int, ...], order: int) -> np.ndarray:
    if len(coalition) < order:
        return m[_bits(coalition)]
    above = _supersets(sizes, coalition)
    weights = np.array([1.0 / comb(int(t), order) for t in sizes[above]])
    return weights @ m[above]


def _fsii(m: np.ndarray, sizes: np.ndarray, coalition: tuple[int, ...], order: int) -> np.ndarray:
    s, k = len(coalition), order
    above = _supersets(sizes, coalition) & (sizes > k)
    weights = np.array([comb(int(t) - 1, k) / comb(int(t) + k - 1, k + s) for t in sizes[above]])
    correction = (-1) ** (k - s) * s / (k + s) * comb(k, s) * (weights @ m[above])
    return m[_bits(coalition)] + correction


def _k_sii(
    m: np.ndarray, sizes: np.ndarray, sets: list[tuple[int, ...]], n: int, order: int
) -> np.ndarray:
    sii = {s: _sii(m, sizes, s, order) for s in sets}
    bernoulli = bernoulli_numbers(order)
    out = []
    for coalition in sets:
        others = [i for i in range(n) if i not in coalition]
        total = np.zeros(m.shape[1:])
        for j in range(order - len(coalition) + 1):
            for extra in combinations(others, j):
                total = total + bernoulli[j] * sii[tuple(sorted(coalition + extra))]
        out.append(total)
    return np.array(out)


def bernoulli_numbers(k: int) -> list[float]:
    """B_0..B_k with B_1 = -1/2 (the convention k-SII uses).

    Example:
        >>> bernoulli_numbers(4)
        [1.0, -0.5, 0.16666666666666666, 0.0, -0.03333333333333333]
    """
    numbers = [Fraction(1)]  # exact: B_3 is 0, not a rounding residue
    for j in range(1, k + 1):
        numbers.append(-sum((comb(j + 1, i) * numbers[i] for i in range(j)), Fraction(0)) / (j + 1))
    return [float(b) for b in numbers]
