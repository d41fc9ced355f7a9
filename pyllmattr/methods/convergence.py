"""Convergence of the gradient methods that approximate an integral or an expectation.

Integrated gradients integrates along a path with ``n_steps`` points and GradientShap
averages ``n_samples`` random points; too few points give values that look plausible
and sum almost right (errors of opposite sign cancel in the completeness gap) but rank
features wrongly. Two checks:

- ``"auto"`` point counts (:class:`AutoPoints`): double the points until no feature's
  value moves by more than ``rtol`` of the largest |attribution| between the last two
  estimates (and, for integrated gradients, the completeness gap is within ``rtol``
  of it too), up to a cap;
- a fixed ``n_steps``: the same gradients weighted by a rule of every other point
  (:func:`half_rule`) give a second estimate for free; a difference over
  :data:`HALF_CHECK` of the largest |attribution| warns.

Both leave a record in ``result.convergence``.

Example:
    >>> auto = AutoPoints(rtol=0.1, cap=64, what="integrated gradients")
    >>> [auto.step(n, prev, cur) for n, prev, cur in [(16, None, [1.0]), (32, [1.0], [1.05])]]
    [False, True]
    >>> auto.record("n_steps")["n_steps"]
    32
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._warnings import warn
from ..pipeline.jobs import check_positive_int

AUTO = "auto"
# A fixed n_steps warns when the every-other-point estimate differs by more than this
# fraction of the largest |attribution|.
HALF_CHECK = 0.10
# A completeness gap this small (nats) never stops "auto" from settling: float32
# log-probs leave gaps of about 1e-4 at any point count (measured 4e-5 to 8e-5 on
# SmolLM2), which would otherwise block attributions that are all near zero.
GAP_FLOOR = 1e-3


@dataclass
class AutoPoints:
    """Point counts that double (16, 32, ...) until the estimate settles or ``cap``.

    ``step(n, previous, current, gap)`` compares the estimates (row 0, the whole
    target's values) with ``n / 2`` and ``n`` points and says whether to stop;
    ``record(key)`` is what ``result.convergence`` keeps, with a warning when the cap
    came first.

    ``gap`` (integrated gradients: the whole target's completeness gap with ``n``
    points) must also be within ``rtol`` of the largest |attribution| (or below
    :data:`GAP_FLOOR`): the exact attributions sum to f(input) - f(baseline), so a
    large gap proves that the values are still off, even when two successive
    estimates happen to agree (measured on SmolLM2 with baseline token 0: 512 and 256
    Gauss-Legendre points agreed to 3.6 % while the gap was 7.6 %).

    Example:
        >>> auto = AutoPoints(rtol=0.02, cap=32, what="GradientShap")
        >>> list(auto.counts())
        [16, 32]
    """

    start: ClassVar[int] = 16
    rtol: float = 0.02
    cap: int = 1024
    what: str = ""
    cost: str = "sum"  # "sum": every count evaluates new points; "last": points are reused
    history: list[list[float]] = field(default_factory=list)
    n: int = 0
    n_points: int = 0
    last_change: float = float("nan")
    last_gap: float | None = None  # |gap| / largest |attribution|, where there is a gap
    converged: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any], cap_key: str, what: str, cost: str = "sum"):
        return cls(rtol=float(options["rtol"]), cap=int(options[cap_key]), what=what, cost=cost)

    def counts(self) -> Iterator[int]:
        n = self.start
        while n <= self.cap:
            yield n
            n *= 2

    def step(self, n: int, previous: Any, current: Any, gap: float | None = None) -> bool:
        """Note the estimate with ``n`` points (and its completeness gap, if the method
        has one); True when it settled."""
        self.n = n
        self.n_points = self.n_points + n if self.cost == "sum" else n
        gap_ok = True
        if gap is not None:
            self.last_gap = relative_gap(gap, current)
            gap_ok = self.last_gap <= self.rtol or abs(gap) <= GAP_FLOOR
        if previous is None:
            return False
        self.last_change = relative_change(previous, current)
        self.history.append([n, self.last_change])
        self.converged = self.last_change <= self.rtol and gap_ok
        return self.converged

    def record(self, key: str) -> dict[str, Any]:
        """``result.convergence``; warns when the cap stopped the doubling."""
        if not self.converged:
            gap = "" if self.last_gap is None else (
                f", and the attributions miss f(input) - f(baseline) by {self.last_gap:.1%} "
                "of it"
            )  # fmt: skip
            warn(
                f"{self.what}: {key}='auto' stopped at {self.n} (the cap) before the values "
                f"settled: the last doubling moved them by {self.last_change:.1%} of the "
                f"largest |attribution|{gap} (rtol={self.rtol}); raise the cap, or read the "
                "values with that uncertainty"
            )
        record = {
            key: self.n,
            "last_change": self.last_change,
            "rtol": self.rtol,
            "converged": self.converged,
            "check": "doubling",
            "n_points": self.n_points,
            "history": self.history,
        }
        if self.last_gap is not None:
            record["last_gap"] = self.last_gap
        return record

    @staticmethod
    def half_record(n_steps: int, change: float) -> dict[str, Any]:
        """``result.convergence`` of a fixed ``n_steps`` checked by :func:`half_rule`."""
        return {
            "n_steps": n_steps,
            "last_change": change,
            "rtol": HALF_CHECK,
            "converged": change <= HALF_CHECK,
            "check": "half",
        }


def describe(convergence: dict[str, Any] | None) -> str:
    """One line on how settled a result's values are (``result.convergence``), or ""
    when no check was made. The command line, the HTML view and the explorer show it.

    Example:
        >>> describe({"n_steps": 64, "last_change": 0.012, "converged": True,
        ...           "check": "doubling"})
        'n_steps=64: converged (last doubling moved values by 1.2% of the largest |attribution|)'
        >>> describe({"n_steps": 1024, "last_change": 0.096, "converged": False,
        ...           "check": "doubling", "last_gap": 0.12})[:40]
        'n_steps=1024: NOT converged (last doubli'
    """
    if not convergence or "last_change" not in convergence:
        return ""
    key = "n_samples" if "n_samples" in convergence else "n_steps"
    state = "converged" if convergence.get("converged") else "NOT converged"
    check = "last doubling" if convergence.get("check") == "doubling" else "half the points"
    gap = convergence.get("last_gap")
    gap_note = "" if gap is None else f"; completeness gap {gap:.1%} of it"
    return (
        f"{key}={convergence[key]}: {state} ({check} moved values by "
        f"{convergence['last_change']:.1%} of the largest |attribution|{gap_note})"
    )


def warn_half_check(what: str, key: str, n: int, change: float) -> None:
    """Warn when the rule of every other point moved the values by more than HALF_CHECK."""
    if change > HALF_CHECK:
        warn(
            f"{what}: with {key}={n}, the estimate from every other point differs by "
            f"{change:.0%} of the largest |attribution|, so the values have not converged "
            f"(a small completeness gap does not show this); pass {key}='auto' to double the "
            f"points until they settle, or a larger {key}"
        )


def auto_defaults(cap_key: str) -> dict[str, Any]:
    """The options of an ``"auto"`` point count: its tolerance and its cap."""
    return {"rtol": AutoPoints.rtol, cap_key: AutoPoints.cap}


def announced_points(options: dict[str, Any], key: str) -> int:
    """The points a trial announces to progress: ``"auto"`` announces its first count
    (each doubling extends the total)."""
    if options[key] == AUTO:
        return AutoPoints.start
    check_positive_int(key, options[key])
    return int(options[key])


def relative_change(previous: Any, current: Any) -> float:
    """The largest change of any value, relative to the largest |value|."""
    previous, current = np.asarray(previous, float), np.asarray(current, float)
    scale = max(float(np.abs(current).max()), float(np.abs(previous).max()), 1e-300)
    return float(np.abs(current - previous).max()) / scale


def relative_gap(gap: float, values: Any) -> float:
    """|gap| relative to the largest |value| (as :func:`relative_change`)."""
    scale = max(float(np.abs(np.asarray(values, float)).max()), 1e-300)
    return abs(float(gap)) / scale


def check_auto_options(options: dict[str, Any], count_key: str, cap_key: str) -> None:
    """``count_key`` is "auto" or a positive int; ``rtol`` a fraction; the cap allows at
    least one doubling."""
    count = options[count_key]
    if not (count == AUTO and isinstance(count, str)):
        ok = isinstance(count, (int, np.integer)) and not isinstance(count, bool) and count > 0
        if not ok:
            raise ValueError(
                f"{count_key} must be a positive integer or 'auto' (doubles until the values "
                f"settle), got {count!r}"
            )
    rtol = options["rtol"]
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(
            f"rtol must be a fraction of the largest |attribution| in (0, 1), got {rtol!r}"
        )
    cap = options[cap_key]
    least = 2 * AutoPoints.start
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < least:
        raise ValueError(
            f"{cap_key} must be an integer >= {least} (it caps {count_key}='auto'), got {cap!r}"
        )


def half_rule(method: str, alphas: np.ndarray) -> np.ndarray:
    """Quadrature weights on every other point of ``alphas`` (0 on the others): a rule of
    about half the points from the same gradients.

    Gauss-Legendre points do not nest, so the half rule is the interpolatory rule on
    every other node (exact for polynomials of degree < n/2); Riemann rules keep their
    nodes and weight each by the part of [0, 1] nearest to it (for the trapezoid rule
    with an odd point count, exactly the trapezoid rule of half the intervals).

    Example:
        >>> half_rule("riemann_trapezoid", np.linspace(0, 1, 5)).tolist()
        [0.25, 0.0, 0.5, 0.0, 0.25]
    """
    n = len(alphas)
    if method == "gausslegendre":
        used = np.arange(0, n, 2)
    elif method == "riemann_right":  # keep the last node, 1
        used = np.arange(n - 1, -1, -2)[::-1]
    else:
        used = np.arange(0, n, 2)
        if method == "riemann_trapezoid" and used[-1] != n - 1:
            used = np.append(used, n - 1)  # keep both ends
    weights = np.zeros(n)
    nodes = alphas[used]
    weights[used] = _interpolatory(nodes) if method == "gausslegendre" else _nearest(nodes)
    return weights


def _interpolatory(nodes: np.ndarray) -> np.ndarray:
    """Weights on [0, 1] integrating polynomials of degree < len(nodes) exactly (solved
    in the Legendre basis, well conditioned on Gauss-like nodes)."""
    z = 2 * nodes - 1
    vander = np.polynomial.legendre.legvander(z, len(z) - 1).T  # row k: P_k at the nodes
    moments = np.zeros(len(z))
    moments[0] = 2.0  # integral of P_0 over [-1, 1]; the others integrate to 0
    return np.linalg.solve(vander, moments) / 2


def _nearest(nodes: np.ndarray) -> np.ndarray:
    """Each node weighted by the length of the part of [0, 1] nearest to it."""
    edges = np.concatenate([[0.0], (nodes[1:] + nodes[:-1]) / 2, [1.0]])
    return np.diff(edges)
