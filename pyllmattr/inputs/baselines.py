"""Baselines sampled per perturbation."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from .._text import check_text


class ProductBaselines:
    """Alternative baseline values, one combination sampled for every perturbed prompt.

    Keys are slot names (or positions) or tuples of them that change together;
    values list the alternatives (a string, or a tuple of strings for a tuple key).
    Sampling is seeded by the ``seed`` of ``attribute``.

    Example:
        >>> baselines = pla.ProductBaselines({
        ...     "name": ["Sarah", "John"],
        ...     ("city", "state"): [("Seattle", "WA"), ("Boston", "MA")],
        ... })
        >>> sorted(baselines.sample(np.random.default_rng(0)))
        ['city', 'name', 'state']
    """

    def __init__(self, alternatives: Mapping[Hashable, Sequence]) -> None:
        if not alternatives:
            raise ValueError("ProductBaselines needs at least one slot with alternatives")
        self.alternatives: dict[tuple, list[tuple[str, ...]]] = {}
        for key, options in alternatives.items():
            keys = key if isinstance(key, tuple) else (key,)
            repeated = [k for k in keys if k in self.slots or keys.count(k) > 1]
            if repeated:
                raise ValueError(
                    f"ProductBaselines: slot {repeated[0]!r} is listed twice; give each slot "
                    "its alternatives once (a tuple key varies slots together)"
                )
            if not options or isinstance(options, str):
                raise ValueError(f"ProductBaselines[{key!r}] must be a non-empty list")
            rows = []
            for option in options:
                row = option if isinstance(option, tuple) else (option,)
                if len(row) != len(keys) or not all(isinstance(v, str) for v in row):
                    raise ValueError(
                        f"ProductBaselines[{key!r}]: {option!r} must be "
                        f"{'a string' if len(keys) == 1 else f'a tuple of {len(keys)} strings'}"
                    )
                for value in row:
                    check_text(value, f"ProductBaselines[{key!r}]: {value!r}")
                rows.append(row)
            self.alternatives[keys] = rows

    @property
    def slots(self) -> list[Hashable]:
        return [k for keys in self.alternatives for k in keys]

    def sample(self, rng: np.random.Generator) -> dict[Hashable, str]:
        chosen: dict[Hashable, str] = {}
        for keys, rows in self.alternatives.items():
            row = rows[int(rng.integers(len(rows)))]
            chosen.update(zip(keys, row, strict=True))
        return chosen

    def first(self) -> dict[Hashable, str]:
        return {
            k: v
            for keys, rows in self.alternatives.items()
            for k, v in zip(keys, rows[0], strict=True)
        }
