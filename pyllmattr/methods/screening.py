"""Screened Shapley value sampling: sample orderings only over the features that interact.

A feature whose marginal contribution is the same in every context is additive: its
Shapley value is that contribution, and it changes no other feature's contributions,
so the orderings need not include it. Two contexts are cheap to score for every
feature at once, the full prompt (leave-one-out: f(N) - f(N without i)) and the
all-baseline prompt (add-one-in: f({i}) - f(∅)); a feature whose two effects agree
within ``screen_tol`` is taken as additive (the idea of Captum's RFC #1894,
ablation-guided Shapley value sampling). It is a test of two contexts out of
2^(n-1), so a feature that interacts only in mid-sized contexts passes it.

Stage 1 scores the 2n + 1 screening prompts of every input in one call; stage 2 the
orderings of the remaining features (n_samples x (m + 1) prompts for m of them) in one
more. In each ordering the screened features hold a random state (each kept with
probability 1/2, as a random ordering would place it before or after a given feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import WrongTypeError
from ..objectives import LogProb
from ..pipeline import Evaluation, Job, Settings
from ..results import AttributionResult
from . import staged

DEFAULT_TOLERANCE = 0.1


@dataclass(repr=False)
class ScreenedResult(AttributionResult):
    """Shapley value sampling with screening: which features were taken as additive.

    ``screened[i]`` is True when feature i's leave-one-out and add-one-in effects (on the
    whole target) agreed within ``screen_tol``: its value is their mean and the
    orderings left it out. ``leave_one_out`` and ``add_one_in`` are those effects.

    Example:
        >>> method = pla.ShapleyValueSampling(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, screen=True, n_samples=20)  # doctest: +SKIP
        >>> [f for f, s in zip(result.input_features, result.screened) if s]  # doctest: +SKIP
        ['Dave', 'lawyer']
    """

    screened: list[bool] = field(default_factory=list)
    leave_one_out: list[float] = field(default_factory=list)
    add_one_in: list[float] = field(default_factory=list)
    screen_tol: float = DEFAULT_TOLERANCE


def check_screen_options(options: dict[str, Any]) -> dict[str, Any]:
    """ShapleyValueSampling's options: ``screen`` and ``screen_tol`` only when screening."""
    screen, tol = options.pop("screen"), options.pop("screen_tol")
    if screen is False:
        if tol is not None:
            raise ValueError("screen_tol sets the screening's tolerance: give screen=True too")
        return options
    if screen is not True:
        raise WrongTypeError(f"screen must be True or False, got {screen!r}")
    tol = DEFAULT_TOLERANCE if tol is None else tol
    wording = f"screen_tol must be a number >= 0 (in the attributed units), got {tol!r}"
    if isinstance(tol, bool) or not isinstance(tol, (int, float)):
        raise WrongTypeError(wording)
    if not tol >= 0:
        raise ValueError(wording)
    return {**options, "screen": True, "screen_tol": float(tol)}


def screened_sampling(model: Any, jobs: list[Job], settings: Settings) -> list[Evaluation]:
    """Both stages for every input (two engine calls in all, one when all are screened)."""
    stages = staged.Stages(model, settings, staged.Role.target)
    rngs = [settings.rng() for _ in jobs]  # each input samples as alone
    tol = settings.options["screen_tol"]
    n_samples = settings.options["n_samples"]
    screens = [
        Screen.from_scores(s, tol)
        for s in stages.score(
            jobs, [screening_masks(j.encoding.n_features) for j in jobs], rngs,
            "ShapleyValueSampling: screening",
        )
    ]  # fmt: skip
    plans = [
        [ordering_masks(screen.screened, n_samples, rng) for _ in range(settings.num_trials)]
        for screen, rng in zip(screens, rngs, strict=True)
    ]
    todo = [i for i, screen in enumerate(screens) if not screen.screened.all()]
    sampled: dict[int, staged.Scored] = {}
    if todo:
        scored = stages.score(
            [jobs[i] for i in todo], [np.concatenate(plans[i]) for i in todo],
            [rngs[i] for i in todo], "ShapleyValueSampling: orderings",
        )  # fmt: skip
        sampled = dict(zip(todo, scored, strict=True))
    totals = stages.totals()
    out = []
    for i, (job, screen) in enumerate(zip(jobs, screens, strict=True)):
        trials = [screen.values() for _ in plans[i]]
        n_prompts = screen.n_prompts
        if i in sampled:
            trials = screen.with_orderings(plans[i], sampled[i])
            n_prompts += sum(len(m) for m in plans[i])
        out.append(screen.evaluation(job, np.stack(trials), n_prompts, totals, tol))
    return out


def screening_masks(n: int) -> np.ndarray:
    """The all-baseline prompt, each feature left out, each feature alone: (2n + 1, n)."""
    alone = np.eye(n, dtype=bool)
    return np.vstack([np.zeros((1, n), dtype=bool), ~alone, alone])


def ordering_masks(screened: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """n_samples orderings of the unscreened features, (m + 1) masks each: start with none
    of them, add one at a time; the screened features hold one random state per ordering."""
    rest = np.flatnonzero(~screened)
    rows = []
    for _ in range(n_samples):
        mask = (rng.random(len(screened)) < 0.5) & screened
        rows.append(mask.copy())
        for feature in rng.permutation(rest):
            mask[feature] = True
            rows.append(mask.copy())
    return np.array(rows)


@dataclass
class Screen:
    """One input's screening: both effects per output column and which features passed."""

    leave_one_out: np.ndarray  # (1 + T, n)
    add_one_in: np.ndarray
    screened: np.ndarray  # (n,) bool
    reference: list[np.ndarray]
    baseline: float
    n_prompts: int

    @classmethod
    def from_scores(cls, scored: staged.Scored, tol: float) -> Screen:
        out = scored.outputs  # rows: unperturbed, empty, n left out, n alone
        n = (len(out) - 2) // 2
        full, empty = out[0], out[1]
        leave_one_out = (full - out[2 : 2 + n]).T
        add_one_in = (out[2 + n :] - empty).T
        screened = np.abs(leave_one_out[0] - add_one_in[0]) <= tol
        n_prompts = 2 * n + 1 + int(scored.reference_scored)
        return cls(
            leave_one_out, add_one_in, screened, scored.reference, float(empty[0]), n_prompts
        )

    def values(self) -> np.ndarray:
        """(1 + T, n): the screened features' values (the mean of both effects), else 0."""
        return np.where(self.screened, (self.leave_one_out + self.add_one_in) / 2, 0.0)

    def with_orderings(self, trials: list[np.ndarray], scored: staged.Scored) -> list[np.ndarray]:
        """Each trial's values: screened features from the screen, the rest the mean of
        their marginal contributions over the trial's orderings."""
        out, row = [], 1
        for masks in trials:
            outputs = scored.outputs[row : row + len(masks)]
            row += len(masks)
            values = self.values()
            steps = int((~self.screened).sum()) + 1
            total = np.zeros_like(values)
            for start in range(0, len(masks), steps):
                m, f = masks[start : start + steps], outputs[start : start + steps]
                added = np.argmax(m[1:] & ~m[:-1], axis=1)  # the feature added at each step
                total[:, added] += (f[1:] - f[:-1]).T
            rest = ~self.screened
            values[:, rest] = total[:, rest] / (len(masks) // steps)
            out.append(values)
        return out

    def evaluation(
        self, job: Job, values: np.ndarray, n_prompts: int, totals: dict[str, Any], tol: float
    ) -> Evaluation:
        extras = {
            "screened": [bool(s) for s in self.screened],
            "leave_one_out": [float(v) for v in self.leave_one_out[0]],
            "add_one_in": [float(v) for v in self.add_one_in[0]],
            "screen_tol": tol,
        }
        return Evaluation(
            values=values, reference=self.reference,
            stats={"n_evaluations": n_prompts, **totals},
            baseline_logprob=self.baseline if type(job.objective) is LogProb else None,
            result_type=ScreenedResult, extras=extras,
        )  # fmt: skip
