"""How faithful an attribution is to the model: deletion and insertion curves, ERASER's
comprehensiveness and sufficiency, and the linear datamodeling score (LDS).

``pla.evaluate(result, model)`` removes the result's features from its prompt in the
order of their attributions and scores what is left, as the method removed them
(:mod:`.cases`), together with random orders (chance) and random ablations (for the
LDS). Every prompt of an evaluation, and of a list of results, is scored in one
``score_pairs`` call through the pipeline's :func:`~pyllmattr.pipeline.scoring.score_all`
(prefix sharing, chunking, progress, cancellation); each distinct prompt of an input
once, so results on the same input share their random orders and ablations.

Cost for one result with n features: at most 2 (K + 1) prompts for its two curves
(plus one per fraction beyond K), 2 K per random order and ``n_ablations``, fewer where
they coincide; ``n_prompts`` says how many it took.

Example:
    >>> result = pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
    >>> faith = pla.evaluate(result, model, seed=0)  # doctest: +SKIP
    >>> faith.lds, faith.aopc_deletion, faith.deletion[:3]  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .. import render
from .._checks import check_int
from ..methods.lasso import spearman
from ..models.interface import ScoringModel
from ..pipeline import attribution_lock, score_all
from ..results import AttributionResult
from .cases import Case, case_for
from .plan import (
    MaskTable,
    curve_points,
    fraction_k,
    order_of,
    random_ablations,
    random_orders,
)

DEFAULT_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)
DEFAULT_N_RANDOM = 8
DEFAULT_N_ABLATIONS = 64


@dataclass(repr=False)
class Faithfulness:
    """How well a result's attributions predict what removing features does.

    f is what the result attributes (``quantity``: log p(target) by default, the
    contrast's difference, ...), measured in one engine call. ``order`` lists the
    features by attribution, largest first. Over k = 0..K (``k``):

    - ``deletion[k]``: f with the first k features of ``order`` removed (at their
      baseline, as in the method); ``deletion[0]`` is the unperturbed prompt's f.
      A faithful attribution makes it fall fast.
    - ``insertion[k]``: f of the all-baseline prompt with only those k features put
      back; ``insertion[0]`` the all-baseline prompt's f. It should rise fast.
    - ``deletion_random`` / ``insertion_random`` (and ``*_random_std``): the mean
      (spread) of the same curves over ``n_random`` random orders: chance.

    At each fraction q of the features (``fractions``, rounded up, at least one):
    ``comprehensiveness[q]`` = f(prompt) - f(prompt without the top ones) (higher is
    better) and ``sufficiency[q]`` = f(prompt) - f(only the top ones) (lower is
    better), ERASER's (DeYoung et al. 2020). ``aopc_deletion`` and ``aopc_insertion``
    are their means over the fractions (ERASER's AOPC); ``aopc_*_random`` the same
    for random orders. ``lds``: Spearman's correlation, over ``n_ablations`` random
    ablations (each feature kept with probability 1/2), between the sum of the kept
    features' attributions and f (the linear datamodeling score of TRAK and
    ContextCite; 1 is perfect, 0 chance).

    With ``per_token=True`` and a result with ``token_attr``, ``token_order``,
    ``token_deletion``, ``token_insertion`` and ``token_lds`` do the same per target
    token (row t: token t's attributions against token t's output).

    ``n_prompts`` is the number of distinct prompts this result needed; ``stats`` the
    engine call's counts (of the whole evaluation when results were evaluated
    together; ``n_score_calls`` is 1 unless the prompts overflow one chunk).

    Example:
        >>> faith = pla.evaluate(result, model, seed=0)  # doctest: +SKIP
        >>> faith.deletion[0] == faith.insertion[-1]  # doctest: +SKIP
        True
        >>> fig, axes = faith.plot()  # doctest: +SKIP
    """

    method: str
    quantity: str
    input_features: list[str]
    order: np.ndarray
    k: int
    deletion: np.ndarray
    insertion: np.ndarray
    comprehensiveness: dict[float, float]
    sufficiency: dict[float, float]
    aopc_deletion: float
    aopc_insertion: float
    fractions: list[float] = field(default_factory=list)
    deletion_random: np.ndarray | None = None
    insertion_random: np.ndarray | None = None
    deletion_random_std: np.ndarray | None = None
    insertion_random_std: np.ndarray | None = None
    aopc_deletion_random: float | None = None
    aopc_insertion_random: float | None = None
    lds: float | None = None
    n_random: int = 0
    n_ablations: int = 0
    seed: int | None = None
    n_prompts: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    token_order: np.ndarray | None = None
    token_deletion: np.ndarray | None = None
    token_insertion: np.ndarray | None = None
    token_lds: np.ndarray | None = None

    # ------------------------------------------------------------ views
    def plot(self, axes: Any = None) -> tuple[Any, Any]:
        """Deletion and insertion curves side by side, each against the random orders'
        mean with a band of one standard deviation (needs matplotlib: the ``plot`` extra)."""
        return render.plot_faithfulness(self, axes)

    def _repr_html_(self) -> str:
        return render.faithfulness_html(self)

    def __repr__(self) -> str:
        lds = "n/a" if self.lds is None else f"{self.lds:+.3f}"
        return (
            f"Faithfulness({self.method}, {len(self.input_features)} features, k={self.k}: "
            f"LDS {lds}, AOPC deletion {self.aopc_deletion:+.3f}, insertion "
            f"{self.aopc_insertion:+.3f}, {self.n_prompts} prompts)"
        )

    # ------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif f.name in ("comprehensiveness", "sufficiency"):
                value = {repr(float(q)): v for q, v in value.items()}
            out[f.name] = value
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faithfulness:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in ("comprehensiveness", "sufficiency"):
            kwargs[name] = {float(q): float(v) for q, v in kwargs[name].items()}
        for f in fields(cls):
            value = kwargs.get(f.name)
            if isinstance(value, list) and f.name not in ("input_features", "fractions"):
                kind = int if "order" in f.name else float
                kwargs[f.name] = np.asarray(value, dtype=kind)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Faithfulness:
        return cls.from_dict(json.loads(text))


@dataclass
class _Settings:
    k: int | None
    fractions: tuple[float, ...]
    n_random: int
    n_ablations: int
    seed: int | None
    per_token: bool


def evaluate(
    results: AttributionResult | Sequence[AttributionResult],
    model: Any,
    k: int | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_random: int = DEFAULT_N_RANDOM,
    n_ablations: int = DEFAULT_N_ABLATIONS,
    seed: int | None = None,
    *,
    inp: Any = None,
    per_token: bool = False,
    progress: Any = None,
    cancel: Any = None,
) -> Faithfulness | list[Faithfulness]:
    """The faithfulness of a result (or of each of a list of results) on ``model``.

    Removes the result's features in the order of its attributions (``k`` of them,
    default all; at most the number of features) as the method removed them, puts them
    back one by one into the all-baseline prompt, does the same for ``n_random`` random
    orders, and scores ``n_ablations`` random ablations for the LDS; all prompts of all
    results in one engine call (see :class:`Faithfulness` for what is measured).
    ``fractions`` (in (0, 1]) are where comprehensiveness and sufficiency are read.
    ``seed`` seeds the random orders, ablations and sampled baselines (each input as
    if alone, so results on the same input share them). ``model`` is any scoring
    model with the tokenizer of the model that computed the result: a result of a
    PyTorch model can be evaluated with the same GGUF on llama.cpp.

    ``inp``: the input the results were computed on; needed only for a result that
    does not carry its input (loaded from JSON), checked against the result otherwise.
    ``per_token=True`` also evaluates each target token's row of ``token_attr`` (up
    to 2 (K + 1) more prompts per token). ``progress`` and ``cancel`` work as in
    ``attribute``. Sets ``result.faithfulness`` on every result (the HTML view shows
    it) and returns the Faithfulness (a list for a list).

    Example:
        >>> result = pla.ShapleyValues(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
        >>> pla.evaluate(result, model, seed=0).lds  # doctest: +SKIP
        0.93
    """
    single = isinstance(results, AttributionResult)
    items = [results] if single else list(results) if isinstance(results, Sequence) else None
    if not items:
        raise ValueError("evaluate takes an AttributionResult or a non-empty list of them")
    settings = _check_settings(k, fractions, n_random, n_ablations, seed, per_token)
    if not isinstance(model, ScoringModel):
        raise ValueError(
            f"evaluate needs a scoring model (pla.load_gguf, pla.load_torch or "
            f"pla.load_torch_gguf) to score the perturbed prompts, got {type(model).__name__}"
        )
    with attribution_lock(model):
        cases = [case_for(r, model, inp) for r in items]
        for case in cases:
            _check_k(settings.k, case.job.encoding.n_features)
        out = _evaluate(cases, model, settings, progress, cancel)
    for result, faith in zip(items, out, strict=True):
        result.faithfulness = faith  # type: ignore[union-attr]
    return out[0] if single else out


def _evaluate(
    cases: list[Case], model: Any, settings: _Settings, progress: Any, cancel: Any
) -> list[Faithfulness]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(case.key, []).append(i)
    plans = [_Plan(model, [cases[i] for i in members], settings) for members in groups.values()]
    sequences, targets = [], []
    for plan in plans:
        for prompt in plan.prompts:  # a prompt's continuations side by side: one trie branch
            for continuation in plan.job.scored_targets:
                sequences.append(prompt)
                targets.append(continuation)
    desc = f"evaluate: {len(sequences)} pairs of {len(cases)} results"
    scores, stats = score_all(model, sequences, targets, progress, cancel, desc)
    stats["n_results"] = len(cases)
    out: list[Any] = [None] * len(cases)
    row = 0
    for plan, members in zip(plans, groups.values(), strict=True):
        c = len(plan.job.scored_targets)
        mine = scores[row : row + c * len(plan.prompts)]
        row += c * len(plan.prompts)
        outputs = plan.job.objective.outputs([np.stack(mine[i::c]) for i in range(c)])
        for i, faith in zip(members, plan.measure(outputs, stats), strict=True):
            out[i] = faith
    return out


class _Plan:
    """The prompts of results on one input (same prompts), and what each reads."""

    def __init__(self, model: Any, cases: list[Case], settings: _Settings) -> None:
        self.cases, self.settings = cases, settings
        self.job = cases[0].job
        n = self.job.encoding.n_features
        self.k = n if settings.k is None else settings.k
        self.points = curve_points(self.k, settings.fractions, n)
        self.table = MaskTable(n)
        self.table.add(np.ones(n, dtype=bool))  # the unperturbed prompt
        rng = np.random.default_rng(settings.seed)  # per input: as if it were alone
        self.random = [self._curves(o) for o in random_orders(rng, n, settings.n_random)]
        self.ablations = random_ablations(rng, n, settings.n_ablations)
        self.ablation_rows = self.table.ablations(self.ablations)
        self.orders = [self._orders_of(case) for case in cases]
        # Sampled baselines (ProductBaselines) drawn from a stream of their own.
        draw = np.random.default_rng(None if settings.seed is None else [settings.seed, 1])
        self.prompts = [cases[0].prompt(model, m, draw) for m in self.table.masks]

    def _curves(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the deletion and insertion points along ``order``."""
        return (self.table.curve(order, self.points, deletion=True),
                self.table.curve(order, self.points, deletion=False))  # fmt: skip

    def _orders_of(self, case: Case) -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
        """(order, curve rows) for the whole target and, with per_token, each token."""
        rows = [np.asarray(case.result.seq_attr, dtype=float)]
        if self.settings.per_token and case.result.token_attr is not None:
            rows += list(np.asarray(case.result.token_attr, dtype=float))
        return [(order_of(values), self._curves(order_of(values))) for values in rows]

    def measure(self, outputs: np.ndarray, stats: dict[str, Any]) -> list[Faithfulness]:
        return [self._measure(case, orders, outputs, stats)
                for case, orders in zip(self.cases, self.orders, strict=True)]  # fmt: skip

    def _measure(
        self, case: Case, orders: list[Any], outputs: np.ndarray, stats: dict[str, Any]
    ) -> Faithfulness:
        s, result = self.settings, case.result
        f = outputs[:, 0]
        order, (deleted, inserted) = orders[0]
        fields_ = {
            **self._curve_fields(f, deleted, inserted),
            **self._random_fields(f),
            "lds": self._lds(np.asarray(result.seq_attr, dtype=float), f),
        }
        if len(orders) > 1:
            fields_.update(self._token_fields(result, orders[1:], outputs))
        used = {0, *self.ablation_rows.tolist()}
        for _, (d, i) in orders:
            used.update(d.tolist() + i.tolist())
        for d, i in self.random:
            used.update(d.tolist() + i.tolist())
        return Faithfulness(
            method=result.method, quantity=result.quantity,
            input_features=list(result.input_features), order=order, k=self.k,
            fractions=list(s.fractions), n_random=s.n_random, n_ablations=s.n_ablations,
            seed=s.seed, n_prompts=len(used), stats=dict(stats), **fields_,
        )  # fmt: skip

    def _curve_fields(self, f: np.ndarray, deleted: np.ndarray, inserted: np.ndarray):
        deletion, insertion = f[deleted], f[inserted]
        at = self._fraction_columns()
        comprehensiveness = {q: float(deletion[0] - deletion[c]) for q, c in at.items()}
        sufficiency = {q: float(deletion[0] - insertion[c]) for q, c in at.items()}
        return {
            "deletion": deletion[: self.k + 1],
            "insertion": insertion[: self.k + 1],
            "comprehensiveness": comprehensiveness,
            "sufficiency": sufficiency,
            "aopc_deletion": float(np.mean(list(comprehensiveness.values()))),
            "aopc_insertion": float(np.mean(list(sufficiency.values()))),
        }

    def _random_fields(self, f: np.ndarray) -> dict[str, Any]:
        if not self.random:
            return {}
        deletion = np.array([f[d] for d, _ in self.random])  # (orders, points)
        insertion = np.array([f[i] for _, i in self.random])
        columns = list(self._fraction_columns().values())
        full = f[0]
        return {
            "deletion_random": deletion[:, : self.k + 1].mean(axis=0),
            "insertion_random": insertion[:, : self.k + 1].mean(axis=0),
            "deletion_random_std": deletion[:, : self.k + 1].std(axis=0),
            "insertion_random_std": insertion[:, : self.k + 1].std(axis=0),
            "aopc_deletion_random": float((full - deletion[:, columns]).mean()),
            "aopc_insertion_random": float((full - insertion[:, columns]).mean()),
        }

    def _fraction_columns(self) -> dict[float, int]:
        """For each fraction, its column among the curve points."""
        n = self.job.encoding.n_features
        return {q: self.points.index(fraction_k(q, n)) for q in self.settings.fractions}

    def _lds(self, values: np.ndarray, f: np.ndarray) -> float | None:
        if not len(self.ablations):
            return None
        return spearman(self.ablations @ values, f[self.ablation_rows])

    def _token_fields(
        self, result: AttributionResult, orders: list[Any], outputs: np.ndarray
    ) -> dict[str, Any]:
        token_attr = np.asarray(result.token_attr, dtype=float)
        deletion, insertion, lds = [], [], []
        for t, (_, (d, i)) in enumerate(orders):
            column = outputs[:, 1 + t]
            deletion.append(column[d][: self.k + 1])
            insertion.append(column[i][: self.k + 1])
            lds.append(np.nan if not len(self.ablations) else self._lds(token_attr[t], column))
        return {
            "token_order": np.array([o for o, _ in orders]),
            "token_deletion": np.array(deletion),
            "token_insertion": np.array(insertion),
            "token_lds": np.array(lds, dtype=float),
        }


def _check_settings(
    k: Any, fractions: Any, n_random: Any, n_ablations: Any, seed: Any, per_token: Any
) -> _Settings:
    if k is not None:
        check_int("k", k, 1)
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or not fractions:
        raise ValueError(
            f"fractions must be a non-empty list of fractions of the features in (0, 1], "
            f"e.g. {list(DEFAULT_FRACTIONS)}; got {fractions!r}"
        )
    for q in fractions:
        if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)) or not 0 < q <= 1:
            raise ValueError(
                f"fractions must lie in (0, 1] (a share of the features, e.g. 0.1 for 10 %); "
                f"got {q!r}"
            )
    check_int("n_random", n_random, 0)
    if check_int("n_ablations", n_ablations, 0) in (1, 2):
        raise ValueError(
            f"n_ablations must be 0 (no LDS) or an integer >= 3 (a rank correlation over "
            f"fewer ablations means nothing), got {n_ablations}"
        )
    if seed is not None:
        check_int("seed", seed, 0)
    return _Settings(
        None if k is None else int(k), tuple(float(q) for q in fractions), int(n_random),
        int(n_ablations), seed, bool(per_token),
    )  # fmt: skip


def _check_k(k: int | None, n_features: int) -> None:
    if k is not None and k > n_features:
        raise ValueError(
            f"k={k} is larger than the result's {n_features} features; pass k <= {n_features} "
            "(or None: all of them)"
        )
