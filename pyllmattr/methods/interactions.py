"""Shapley interactions: which features act together, exactly or estimated by shapiq.

The game is the attribution's own: a coalition of features is a mask (True: the
feature keeps its value, False: its baseline), rendered into a prompt as in every
perturbation method (baselines, ``ProductBaselines``, grouping masks), and its value
is the objective (log p(target), p(target), a contrast) after that prompt.

Up to ``2^n <= budget`` the values are exact: all 2^n prompts of every input go to the
engine in one call and :mod:`.interaction_indices` computes the index from them (no
shapiq needed). Beyond, shapiq's estimators ask for coalitions in batches and each
batch is one :func:`pyllmattr.pipeline.scoring.score_all` call (one ``score_pairs``
call unless it exceeds the scoring chunk), so prefixes shared inside a batch are
decoded once; progress and cancellation follow the batches.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from math import comb
from typing import Any, ClassVar

import numpy as np

from .._checks import check_int, check_positive_int
from .._extras import require
from ..interaction_result import InteractionResult
from ..objectives import LogProb
from ..pipeline import AttributionMethod, Evaluation, Job, Settings
from ..pipeline.jobs import naming_input
from ..progress import ProgressCallback, progress_callback
from . import staged
from .interaction_indices import INDICES, all_coalitions, exact_interactions

EXTRA = "pip install 'pyllmattr[interactions]'"
# budget=None: exact up to this many features (4096 prompts), else DEFAULT_BUDGET.
EXACT_FEATURES = 12
DEFAULT_BUDGET = 4096
# Permutation sampling asks for its coalitions permutation by permutation: batch about
# this many per engine call, so prefixes are shared and progress still moves.
COALITIONS_PER_CALL = 1024
# The estimators pyllmattr offers (shapiq's names) and the indices each computes.
APPROXIMATORS: dict[str, tuple[str, ...]] = {
    "regression": ("SII", "k-SII", "FSII"),  # KernelSHAP-IQ, regression FSII
    "permutation": ("SII", "k-SII", "STII"),
    "montecarlo": INDICES,  # SHAP-IQ
    "svarm": INDICES,  # SVARM-IQ
    "spex": INDICES,
    "proxyspex": INDICES,
}
SPEX_QUERY = {
    "query_method": "complex", "num_subsample": 3, "delays_method_source": "joint-coded",
    "subsampling_method": "qsft", "delays_method_channel": "identity-siso", "num_repeat": 1,
    "t": 2,
}  # fmt: skip
PROXYSPEX_MIN_BUDGET = 100  # 5-fold cross-validated boosted trees need samples per fold


class ShapleyInteractions(AttributionMethod):
    """Shapley interactions: how much features matter together beyond their own effects.

    ``index`` is ``"k-SII"`` (default: the values up to ``order`` sum to f(prompt) -
    f(all baselines)), ``"SII"`` (first order: the Shapley values), ``"STII"``
    (Shapley-Taylor) or ``"FSII"`` (Faith-Shap); ``order`` the largest coalition size.

    ``budget`` is the number of coalitions (perturbed prompts) per input and trial.
    When 2^n_features <= budget the values are **exact**: every coalition is scored
    (one engine call for all inputs) and computed here, per target token as well.
    ``budget=None`` means 2^n up to 12 features (4096 prompts) and 4096 beyond (or
    the least the estimator needs, when more). Otherwise shapiq **estimates** the
    values for the whole target: ``approximator="auto"`` is shapiq's choice for the
    index (KernelSHAP-IQ for SII and k-SII, regression for FSII, SVARM-IQ for STII,
    SPEX above 64 features at order 2); ``"regression"``, ``"permutation"``,
    ``"montecarlo"``, ``"svarm"``, ``"spex"`` or ``"proxyspex"`` name one (a named
    estimator runs even when exact computation would fit; ``"exact"`` insists on
    exact values). Estimation needs the extra: ``pip install 'pyllmattr[interactions]'``.

    Example:
        >>> inp = pla.TextTemplateInput("{} lives in {}, {}", ["Dave", "Palm Coast", "FL"])
        >>> method = pla.ShapleyInteractions(model)  # doctest: +SKIP
        >>> result = method.attribute(inp, target=" and is a lawyer")  # doctest: +SKIP
        >>> result.interactions[(1, 2)]  # Palm Coast x FL  # doctest: +SKIP
    """

    name = "interactions"
    defaults: ClassVar[dict[str, Any]] = {
        "index": "k-SII", "order": 2, "budget": None, "approximator": "auto",
    }  # fmt: skip

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        index, approximator = options["index"], options["approximator"]
        if index not in INDICES:
            raise ValueError(f"unknown interaction index {index!r}; use one of {list(INDICES)}")
        check_positive_int("order", options["order"])
        check_int("budget", options["budget"], least=1, none_ok=True)
        known = ["auto", "exact", *APPROXIMATORS]
        if approximator not in known:
            raise ValueError(f"unknown approximator {approximator!r}; use one of {known}")
        if approximator in APPROXIMATORS and index not in APPROXIMATORS[approximator]:
            able = [name for name, indices in APPROXIMATORS.items() if index in indices]
            raise ValueError(
                f"approximator {approximator!r} does not estimate {index}; use one of "
                f"{['auto', *able]} for {index}"
            )
        return options

    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        plans = []
        for job in jobs:
            with naming_input(job.index, settings.batch):
                plans.append(plan(job.encoding.n_features, **settings.options))
        planned = sum(p.budget * settings.num_trials for p in plans)
        desc = f"{type(self).__name__}: {planned} prompts"
        with progress_callback(settings.progress, desc) as report:
            tracker = CallProgress(report, planned)
            scoring = dataclasses.replace(settings, progress=tracker.relay if report else False)
            stages = staged.Stages(self.model, scoring, staged.Role.target)
            rngs = [settings.rng() for _ in jobs]  # each input samples as alone
            found: dict[int, Found] = {}
            exact_jobs = [(j, r, p) for j, r, p in zip(jobs, rngs, plans, strict=True) if p.exact]
            if exact_jobs:
                found.update(exact_found(exact_jobs, stages, tracker, settings))
            for job, rng, p in zip(jobs, rngs, plans, strict=True):
                if not p.exact:
                    with naming_input(job.index, settings.batch):
                        found[job.index] = estimated_found(job, rng, p, stages, tracker, settings)
            tracker.finish()
        totals = stages.totals()
        return [found[job.index].evaluation(job, totals) for job in jobs]


# ---------------------------------------------------------------- planning
@dataclass
class Plan:
    """How one input's interactions are computed: exactly, or by which estimator."""

    exact: bool
    budget: int  # coalitions per trial
    index: str
    order: int
    approximator: str


def plan(n: int, index: str, order: int, budget: int | None, approximator: str) -> Plan:
    """The computation for an input of ``n`` features (ValueError when it cannot run)."""
    if order > n:
        raise ValueError(f"order={order} exceeds the input's {n} features; use order <= {n}")
    everything = 2**n
    if approximator == "exact":
        if budget is not None and budget < everything or budget is None and n > EXACT_FEATURES:
            raise ValueError(
                f"exact interactions over {n} features need 2^{n} = {everything} coalitions; "
                f"pass budget={everything} to confirm, group features with a mask, or use "
                'approximator="auto"'
            )
        return Plan(True, everything, index, order, "exact")
    given = budget
    if budget is None:
        budget = everything if n <= EXACT_FEATURES else DEFAULT_BUDGET
    if approximator == "auto" and budget >= everything:
        return Plan(True, everything, index, order, "exact")
    least = minimum_budget(n, index, order, approximator)
    if given is None:
        budget = max(budget, least)
    elif budget < least:
        raise ValueError(
            f"budget={budget} is below the {least} coalitions the {approximator!r} estimator "
            f"needs for {index} of order {order} over {n} features; raise budget to at least "
            f"{least}, lower the order, or group features with a mask"
        )
    # Regression and sampling estimators draw distinct coalitions: at most 2^n of them.
    if approximator not in ("permutation", "spex", "proxyspex"):
        budget = min(budget, everything)
    return Plan(False, budget, index, order, approximator)


def minimum_budget(n: int, index: str, order: int, approximator: str) -> int:
    """The fewest coalitions the estimator can work with."""
    shapiq = import_shapiq()
    if approximator == "auto":
        approximator = auto_family(n, index, order)
    if approximator == "permutation":
        estimator = make_approximator(shapiq, approximator, index, order, n, None)
        lower = sum(comb(n, s) for s in range(1, order)) if index == "STII" else 0
        return lower + 1 + estimator.iteration_cost  # one permutation
    if approximator == "spex":
        from sparse_transform.qsft.signals.input_signal_subsampled import SubsampledSignal

        # SPEX's smallest design (b = 3 bits, degree t = 2), from its query parameters;
        # these are shapiq 1.4.1's, restated because building a SPEX (its BCH decoder)
        # takes minutes.
        return int(SubsampledSignal.get_number_of_samples(n, 3, 2, 2, SPEX_QUERY))
    if approximator == "proxyspex":
        return PROXYSPEX_MIN_BUDGET
    # Regression and sampling estimators: one coalition per value they estimate.
    return sum(comb(n, s) for s in range(order + 1))


def auto_family(n: int, index: str, order: int) -> str:
    """The estimator family shapiq's automatic choice takes (its explainer's rules)."""
    from shapiq.explainer.configuration import choose_spex

    if choose_spex(max_order=order, n_players=n):
        return "spex"
    return "svarm" if index == "STII" else "regression"


def import_shapiq() -> Any:
    """shapiq, or an ImportError naming the extra (exact values need nothing more)."""
    (shapiq,) = require(("shapiq",), "estimating Shapley interactions beyond the budget", EXTRA)
    return shapiq


def make_approximator(
    shapiq: Any, approximator: str, index: str, order: int, n: int, random_state: int | None
) -> Any:
    if approximator == "auto":
        from shapiq.explainer.configuration import setup_approximator_automatically

        return setup_approximator_automatically(index, order, n, random_state)
    if approximator == "proxyspex":
        require(("lightgbm",), "approximator='proxyspex'", EXTRA)
        return shapiq.ProxySPEX(n=n, index=index, max_order=order, random_state=random_state)
    from shapiq.explainer.configuration import setup_approximator

    return setup_approximator(approximator, index, order, n, random_state)


# ---------------------------------------------------------------- progress
class CallProgress:
    """One rising ``(done, total)`` count of decoded tokens over engine calls that come
    one at a time (shapiq asks for its next batch after seeing the last one's values).

    The total is estimated from the tokens per prompt seen so far and the prompts
    planned; it ends equal to ``done``.

    Example:
        >>> seen = []
        >>> progress = CallProgress(lambda d, t: seen.append((d, t)), planned=4)
        >>> progress.next_call(2); progress.relay(10, 20); progress.call_done(20)
        >>> progress.next_call(2); progress.relay(5, 20); progress.call_done(20); progress.finish()
        >>> seen
        [(10, 40), (25, 40), (40, 40)]
    """

    def __init__(self, report: ProgressCallback | None, planned: int) -> None:
        self.report, self.planned = report, planned
        self.decoded = self.prompts = self.current = 0

    def next_call(self, n_prompts: int) -> None:
        self.current = n_prompts

    def relay(self, done: int, total: int) -> bool | None:
        if self.report is None:
            return None
        through = self.prompts + self.current
        expected = (self.decoded + total) * max(self.planned, through) / max(through, 1)
        return self.report(self.decoded + done, max(round(expected), self.decoded + done))

    def call_done(self, n_decoded: int) -> None:
        self.decoded += int(n_decoded)
        self.prompts += self.current
        self.current = 0

    def finish(self) -> None:
        if self.report is not None and self.decoded:
            self.report(self.decoded, self.decoded)


def score(
    stages: staged.Stages,
    tracker: CallProgress,
    jobs: list[Job],
    masks: list[np.ndarray],
    rngs: list[np.random.Generator],
    what: str,
) -> list[staged.Scored]:
    """One engine call (``Stages.score``) with its prompts counted for progress."""
    tracker.next_call(sum(len(m) for m in masks))
    scored = stages.score(jobs, masks, rngs, what)
    tracker.call_done(stages.calls[-1]["n_decoded"])
    return scored


# ---------------------------------------------------------------- results
@dataclass
class Found:
    """One input's interactions, per trial, and what it cost."""

    plan: Plan
    first_order: list[np.ndarray] = field(default_factory=list)  # per trial (1 [+ T], n)
    interactions: list[dict[tuple[int, ...], float]] = field(default_factory=list)
    token_matrices: list[np.ndarray] = field(default_factory=list)  # per trial (T, n, n)
    reference: list[np.ndarray] = field(default_factory=list)
    baseline: float | None = None
    n_prompts: int = 0
    n_batches: int = 0
    budget_used: int = 0
    approximator: str = "exact"

    def evaluation(self, job: Job, totals: dict[str, Any]) -> Evaluation:
        n = job.encoding.n_features
        keys = sorted({k for trial in self.interactions for k in trial}, key=lambda k: (len(k), k))
        mean = {k: float(np.mean([t.get(k, 0.0) for t in self.interactions])) for k in keys}
        matrix = None
        if self.plan.order >= 2:
            matrix = pair_matrix(mean, n)
        tokens = np.mean(self.token_matrices, axis=0) if self.token_matrices else None
        stats = {"n_evaluations": self.n_prompts, **totals, "n_batches": self.n_batches}
        extras = {
            "interactions": mean,
            "interaction_matrix": matrix,
            "token_interaction_matrix": tokens if self.plan.order >= 2 else None,
            "index": self.plan.index,
            "order": self.plan.order,
            "budget_used": self.budget_used,
            "approximator": self.approximator,
            "exact": self.plan.exact,
        }
        return Evaluation(
            values=np.stack(self.first_order), reference=self.reference, stats=stats,
            baseline_logprob=self.baseline, result_type=InteractionResult, extras=extras,
        )  # fmt: skip


def pair_matrix(values: dict[tuple[int, ...], Any], n: int) -> np.ndarray:
    """n x n (or (..., n, n) for vector values): pairs off the diagonal, singletons on it."""
    sample = np.asarray(next(iter(values.values()))) if values else np.zeros(())
    matrix = np.zeros((*sample.shape, n, n))
    for key, value in values.items():
        if len(key) == 1:
            matrix[..., key[0], key[0]] = value
        elif len(key) == 2:
            matrix[..., key[0], key[1]] = matrix[..., key[1], key[0]] = value
    return matrix


def exact_found(
    work: list[tuple[Job, np.random.Generator, Plan]],
    stages: staged.Stages,
    tracker: CallProgress,
    settings: Settings,
) -> dict[int, Found]:
    """Every coalition of every input (and trial), scored in one call, solved exactly."""
    trials = settings.num_trials
    jobs = [job for job, _, _ in work]
    masks = [np.tile(all_coalitions(job.encoding.n_features), (trials, 1)) for job in jobs]
    scored = score(
        stages, tracker, jobs, masks, [rng for _, rng, _ in work], "ShapleyInteractions: exact"
    )
    out = {}
    for (job, _, p), s in zip(work, scored, strict=True):
        size = 2**job.encoding.n_features
        found = Found(p, reference=s.reference, n_prompts=int(s.reference_scored) + trials * size)
        found.budget_used, found.n_batches = size, 1
        for t in range(trials):
            values = s.outputs[1 + t * size : 1 + (t + 1) * size]
            sets, phi = exact_interactions(values, p.order, p.index)
            record_trial(found, job, sets, phi)
        if type(job.objective) is LogProb:  # the empty coalition is row 0 of each trial
            found.baseline = float(s.outputs[1, 0])
        out[job.index] = found
    return out


def record_trial(found: Found, job: Job, sets: list[tuple[int, ...]], phi: np.ndarray) -> None:
    """One trial's exact values: phi (n_sets, 1 + T), columns [whole target, tokens]."""
    n = job.encoding.n_features
    first = np.zeros((phi.shape[1], n))
    for key, column in zip(sets, phi, strict=True):
        if len(key) == 1:
            first[:, key[0]] = column
    found.first_order.append(first)
    found.interactions.append({key: float(v[0]) for key, v in zip(sets, phi, strict=True)})
    if found.plan.order >= 2:
        per_token = {key: v[1:] for key, v in zip(sets, phi, strict=True) if len(key) <= 2}
        found.token_matrices.append(pair_matrix(per_token, n))


# ---------------------------------------------------------------- estimation
class EngineGame:
    """shapiq's value function for one input: each call scores its coalitions in one
    engine call and returns their values for the whole target.

    Example:
        >>> game = EngineGame(job, stages, tracker, rng)  # doctest: +SKIP
        >>> game(np.array([[True, False], [True, True]]))  # doctest: +SKIP
        array([-7.1, -3.2])
    """

    def __init__(
        self, job: Job, stages: staged.Stages, tracker: CallProgress, rng: np.random.Generator
    ) -> None:
        self.job, self.stages, self.tracker, self.rng = job, stages, tracker, rng
        self.n_batches = self.n_coalitions = self.n_prompts = 0
        self.reference: list[np.ndarray] | None = None
        self.empty_value: float | None = None

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        masks = np.atleast_2d(np.asarray(coalitions, dtype=bool))
        what = f"ShapleyInteractions: batch {self.n_batches + 1}"
        scored = score(self.stages, self.tracker, [self.job], [masks], [self.rng], what)[0]
        self.n_batches += 1
        self.n_coalitions += len(masks)
        self.n_prompts += len(masks) + int(scored.reference_scored)
        if self.reference is None:
            self.reference = scored.reference
        empty = np.flatnonzero(~masks.any(axis=1))
        if empty.size and self.empty_value is None:
            self.empty_value = float(scored.outputs[1 + empty[0], 0])
        return scored.outputs[1:, 0].copy()


def estimated_found(
    job: Job,
    rng: np.random.Generator,
    p: Plan,
    stages: staged.Stages,
    tracker: CallProgress,
    settings: Settings,
) -> Found:
    """shapiq's estimate for one input, each trial with its own random state."""
    shapiq = import_shapiq()
    n = job.encoding.n_features
    found = Found(p)
    for _ in range(settings.num_trials):
        estimator = make_approximator(
            shapiq, p.approximator, p.index, p.order, n, int(rng.integers(2**31 - 1))
        )
        game = EngineGame(job, stages, tracker, rng)
        values = estimator.approximate(p.budget, game, **batching(estimator))
        interactions = {
            tuple(int(i) for i in key): float(values.values[at])
            for key, at in values.interaction_lookup.items()
            if 1 <= len(key) <= p.order
        }
        first = np.zeros((1, n))
        for key, value in interactions.items():
            if len(key) == 1:
                first[0, key[0]] = value
        found.first_order.append(first)
        found.interactions.append(interactions)
        found.reference = found.reference or (game.reference or [])
        found.n_prompts += game.n_prompts
        found.n_batches += game.n_batches
        found.budget_used = max(found.budget_used, game.n_coalitions)
        if type(job.objective) is LogProb and found.baseline is None:
            found.baseline = game.empty_value
        found.approximator = type(estimator).__name__
    return found


def batching(estimator: Any) -> dict[str, int]:
    """Permutation estimators take ``batch_size`` (permutations per game call): make a call
    about COALITIONS_PER_CALL coalitions instead of shapiq's default 5 permutations."""
    if "batch_size" not in inspect.signature(estimator.approximate).parameters:
        return {}
    return {"batch_size": max(1, COALITIONS_PER_CALL // max(estimator.iteration_cost, 1))}
