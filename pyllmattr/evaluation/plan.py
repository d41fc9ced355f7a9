"""Which prompts an evaluation scores: masks of deletion and insertion curves, random
orders and random ablations, each distinct mask once.

A mask row says which features keep their value (True) and which take their baseline
(False), as everywhere in pyllmattr. Pure numpy: no model here.

Example:
    >>> table = MaskTable(3)
    >>> table.curve(np.array([2, 0, 1]), [0, 1, 2], deletion=True).tolist()
    [0, 1, 2]
    >>> table.masks[2].tolist()
    [False, True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def order_of(values: np.ndarray) -> np.ndarray:
    """Feature indices by attribution, largest (most raising) first; ties in feature order."""
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")


def fraction_k(fraction: float, n_features: int) -> int:
    """How many features a fraction of them is: rounded up, at least one."""
    return max(1, math.ceil(fraction * n_features - 1e-9))


def curve_points(k: int, fractions: Sequence[float], n_features: int) -> list[int]:
    """The points scored along an order: 0..k, and each fraction's count beyond k."""
    extra = {fraction_k(q, n_features) for q in fractions}
    return sorted(set(range(k + 1)) | extra)


class MaskTable:
    """Distinct masks of one input, in the order first asked for."""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.masks: list[np.ndarray] = []
        self._rows: dict[bytes, int] = {}

    def add(self, mask: np.ndarray) -> int:
        """The row of ``mask`` (added when new)."""
        mask = np.asarray(mask, dtype=bool)
        key = mask.tobytes()
        if key not in self._rows:
            self._rows[key] = len(self.masks)
            self.masks.append(mask)
        return self._rows[key]

    def curve(self, order: np.ndarray, points: Sequence[int], deletion: bool) -> np.ndarray:
        """Rows of the masks with the first ``k`` features of ``order`` removed
        (``deletion``) or the only ones kept (insertion), for every k of ``points``."""
        rows = []
        for k in points:
            mask = np.full(self.n_features, deletion)
            mask[order[:k]] = not deletion
            rows.append(self.add(mask))
        return np.array(rows, dtype=int)

    def ablations(self, masks: np.ndarray) -> np.ndarray:
        return np.array([self.add(m) for m in masks], dtype=int)


def random_orders(rng: np.random.Generator, n_features: int, n_random: int) -> list[np.ndarray]:
    return [rng.permutation(n_features) for _ in range(n_random)]


def random_ablations(rng: np.random.Generator, n_features: int, n: int) -> np.ndarray:
    """``n`` masks keeping each feature with probability 1/2."""
    return rng.random((n, n_features)) < 0.5
