"""The gradient methods' evaluate step: trials of PyTorch gradients, summed into features.

A trial (:meth:`GradientMethod.trial`) gets a :class:`TrialInput` (the job, the matrix
summing token attributions into features, the random generator, the progress ticker
and the options) and returns a :class:`Trial`. Gradients come from
:func:`chunk_gradients` (per point, chunk by chunk), summed with quadrature weights by
:func:`weighted_sums`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from ..cancel import Cancelled
from ..inputs.base import Encoding
from ..models.interface import GradientModel
from ..objectives import Objective
from ..pipeline import AttributionMethod, Evaluation, Job, Settings
from ..pipeline.jobs import naming_input
from ..progress import progress_callback
from .layers import EMBEDDINGS, Probe

# Input embeddings (batch, tokens, hidden) at some path points, and the probe's
# replacements of its layer's output there (None: the layer computes its own).
Points = Callable[[slice], tuple[Any, list[Any] | None]]

AGGREGATES = ("sum", "l2")
# Tokens (batch x sequence length) per gradient forward when internal_batch_size is None.
DEFAULT_GRADIENT_TOKENS = 1024
# The options integrated gradients and GradientShap share (each adds its point count).
PATH_DEFAULTS: dict[str, Any] = {
    "baselines": None,
    "internal_batch_size": None,
    "aggregate": "sum",
    "per_token": True,
    "layer": EMBEDDINGS,
}


@dataclass
class TrialInput:
    """What one trial of a gradient method works on.

    ``weights`` (n_tokens, n_features) sums token attributions into features
    (:func:`feature_weights`); ``rng`` is the input's generator (seeded by ``seed``),
    shared by its trials; ``ticker`` reports progress and checks cancellation.
    """

    job: Job
    weights: np.ndarray
    rng: np.random.Generator
    ticker: Ticker
    options: dict[str, Any]


@dataclass
class Trial:
    """One gradient attribution of one job (what :meth:`GradientMethod.trial` returns).

    ``values`` (1 [+ T], n_features): row 0 the whole target, then each target token;
    ``input_logprobs``: each continuation's token log-probs at the prompt;
    ``gap`` (1 [+ T],): sum of attributions minus f(prompt) - f(baseline), where the
    method has a completeness property, with ``baseline_logprob`` (the target at the
    baseline); ``samples`` (n, 1 [+ T], n_features): per-sample values whose mean
    ``values`` is (their spread becomes ``*_attr_std``); ``convergence``: how the
    point count was chosen or checked (``result.convergence``).

    Example:
        >>> Trial(values=np.zeros((1, 3)), input_logprobs=[np.array([-1.0])]).gap is None
        True
    """

    values: np.ndarray
    input_logprobs: list[np.ndarray]
    gap: np.ndarray | None = None
    baseline_logprob: float | None = None
    samples: np.ndarray | None = None
    convergence: dict[str, Any] | None = None


class GradientMethod(AttributionMethod):
    """Base of the gradient methods: attribute through gradients of the input embeddings.

    A subclass defines ``name``, ``defaults`` and ``trial(inputs) -> Trial``; this
    class runs the trials of every job of the pipeline, reports
    progress over all of them, and sums per-token attributions into features.
    ``attribute_batch`` runs the inputs one after the other (PyTorch batches the
    path points of one input), through the same pipeline as ``attribute``.

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> method = pla.METHODS["integrated-gradients"](tm)  # doctest: +SKIP
        >>> isinstance(method, pla.GradientMethod)  # doctest: +SKIP
        True
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    needs_gradients: ClassVar[bool] = True
    model: GradientModel
    requirement: ClassVar[str] = (
        "gradients, which llama.cpp does not provide: load the model with "
        "pla.load_torch(hf_model, tokenizer), or the same GGUF file with "
        "pla.load_torch_gguf(path)"
    )

    # ------------------------------------------------------------ subclass API
    def n_points(self, options: dict[str, Any]) -> int:
        """Embedding points at which one trial takes gradients."""
        return 1

    def trial(self, inputs: TrialInput) -> Trial:
        """One attribution of ``inputs.job``: see :class:`Trial`."""
        raise NotImplementedError

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        if options.get("aggregate") not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {options['aggregate']!r}")
        self.n_points(options)  # validates the point count before any work
        return options

    # ------------------------------------------------------------ pipeline step
    def evaluate(self, jobs: list[Job], settings: Settings) -> list[Evaluation]:
        total = len(jobs) * settings.num_trials * self.n_points(settings.options)
        with progress_callback(settings.progress, type(self).__name__) as report:
            ticker = Ticker(report, settings.cancel, total)
            return [self._evaluate_job(job, settings, ticker, len(jobs)) for job in jobs]

    def _evaluate_job(
        self, job: Job, settings: Settings, ticker: Ticker, n_inputs: int
    ) -> Evaluation:
        started = time.perf_counter()
        ticker.start_job()
        weights = feature_weights(job.encoding)
        rng = np.random.default_rng(settings.seed)  # per input: as if it were alone
        trials = []
        with naming_input(job.index, settings.batch):
            for _ in range(settings.num_trials):
                inputs = TrialInput(job, weights, rng, ticker, settings.options)
                trials.append(self.trial(inputs))
        longest = max(map(len, job.scored_targets))
        stats = {
            **ticker.stats,
            "n_tokens": len(job.encoding.reference_ids) + longest - 1,
            "device": str(self.model.device),
            "seconds": time.perf_counter() - started,
            "n_inputs": n_inputs,
        }
        return _evaluation(trials, stats)


def _evaluation(trials: list[Trial], stats: dict[str, Any]) -> Evaluation:
    """One job's Evaluation from its trials: their mean, spread and diagnostics."""
    has_gap = trials[0].gap is not None
    samples = [t.samples for t in trials if t.samples is not None]
    convergence = merge_convergence([t.convergence for t in trials if t.convergence])
    return Evaluation(
        values=np.stack([t.values for t in trials]),
        reference=list(trials[0].input_logprobs),
        stats=stats,
        baseline_logprob=float(np.mean([t.baseline_logprob for t in trials])) if has_gap else None,
        completeness_gap=np.mean([t.gap for t in trials if t.gap is not None], axis=0)
        if has_gap
        else None,
        spread=np.concatenate(samples).std(axis=0) if samples else None,
        extras={"convergence": convergence} if convergence else {},
    )


def merge_convergence(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One record for several trials: the most points and the largest change any used,
    converged only if all did."""
    if not records:
        return None
    if len(records) == 1:
        return records[0]
    merged = dict(records[0])
    for key, value in records[0].items():
        if isinstance(value, bool):
            merged[key] = all(r[key] for r in records)
        elif isinstance(value, (int, float)) and key != "rtol":
            merged[key] = max(r[key] for r in records)
    merged.pop("history", None)  # per trial; the merged record keeps the extremes
    merged["num_trials"] = len(records)
    return merged


class Ticker:
    """Progress and cancellation between gradient chunks over all jobs, and what the
    current job's chunks cost."""

    def __init__(self, progress: Any, cancel: Any, total: int) -> None:
        self.progress, self.cancel, self.total = progress, cancel, total
        self.done = 0  # points of the whole run
        self.start_job()

    def start_job(self) -> None:
        self.stats = {
            "n_evaluations": 0,
            "n_forward_calls": 0,
            "n_backward_calls": 0,
            "points_per_forward": 0,
        }

    def extend(self, n_points: int) -> None:
        """More points than announced (a point count chosen as it goes, n_steps="auto")."""
        self.total += n_points

    def check(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled("attribution cancelled")

    def advance(self, n_points: int, n_backward: int) -> None:
        self.stats["n_evaluations"] += n_points
        self.stats["n_forward_calls"] += 1
        self.stats["n_backward_calls"] += n_backward
        self.stats["points_per_forward"] = max(self.stats["points_per_forward"], n_points)
        self.done += n_points
        if self.progress is not None and self.progress(self.done, self.total) is False:
            raise Cancelled("attribution cancelled by the progress callback")


def feature_weights(encoding: Encoding) -> np.ndarray:
    """(n_tokens, n_features) matrix summing token attributions into features; a token
    shared by k features gives each 1/k, so totals are kept."""
    positions = encoding.feature_positions
    if positions is None:
        raise ValueError(
            "this input does not say which tokens belong to which feature; "
            "gradient methods need a pla.TextTokenInput or pla.TextTemplateInput"
        )
    weights = np.zeros((len(encoding.reference_ids), encoding.n_features))
    for feature, tokens in enumerate(positions):
        weights[tokens, feature] = 1.0
    shared = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, shared, out=np.zeros_like(weights), where=shared > 0)


def weighted_sums(
    chunks: Iterable[tuple[slice, list[Any]]], weight_sets: Sequence[np.ndarray]
) -> list[list[Any]]:
    """sum_k w[k] * grad f_j at point k, for every weight vector w of ``weight_sets``
    (one gradient pass serves several quadratures of the same points).

    ``chunks`` are :func:`chunk_gradients`' (slice, per-leaf gradients); returns, per
    weight vector, one float32 tensor (n_outputs, leaf length, width) per leaf (None
    where no output depends on the leaf).
    """
    import torch

    sums: list[list[Any]] = [[] for _ in weight_sets]
    for chunk, grads in chunks:
        for total, w in zip(sums, weight_sets, strict=True):
            for k, g in enumerate(grads):
                part = None
                if g is not None:
                    scale = torch.tensor(w[chunk], dtype=torch.float32, device=g.device)
                    part = (g * scale[None, :, None, None]).sum(dim=1)
                if len(total) <= k:
                    total.append(part)
                else:
                    total[k] = _add(total[k], part)
    return sums


def chunk_gradients(
    probe: Probe,
    points: Points,
    alphas: np.ndarray,
    job: Job,
    per_token: bool,
    batch_size: int,
    ticker: Ticker,
) -> Iterator[tuple[slice, list[Any]]]:
    """grad f_j at each point k, chunk by chunk.

    ``points(chunk)`` gives the input embeddings (batch, prompt tokens, hidden) and
    the probe's replacements (or None) of the points in ``chunk`` (a slice);
    ``alphas`` are the points' positions on their path, for error messages. Outputs
    j are [whole target] or, with ``per_token``, [whole target, token 1, ..., token
    T]; yields the chunk's slice and, per leaf of the probe, a float32 tensor
    (n_outputs, chunk, leaf length, width), or None where no output depends on it.
    """
    import torch

    objective, continuations = job.objective, job.scored_targets
    n_rows = 1 + len(job.target_ids) * per_token
    # The whole target's gradient is the sum of the token gradients when its output is
    # their sum (log-probs add up): no backward of its own.
    summed = per_token and objective.whole_is_token_sum(job.target_ids)
    with frozen_parameters(probe.model.model):
        for lo in range(0, len(alphas), batch_size):
            ticker.check()
            chunk = slice(lo, min(lo + batch_size, len(alphas)))
            with torch.enable_grad():
                inputs, replace = points(chunk)
                leaves, scored = probe.scored(inputs, continuations, replace)
                columns = list(enumerate(objective.columns(scored, torch.exp)))
                rows = columns[1:] if summed else columns if per_token else columns[:1]
                grads: list[Any] = [None] * len(leaves)
                for i, (row, value) in enumerate(rows):
                    # Points are independent rows of the batch: the gradient of the sum
                    # is each point's own gradient.
                    found = torch.autograd.grad(
                        value.sum(), leaves, retain_graph=i < len(rows) - 1, allow_unused=True
                    )
                    for k, g in enumerate(found):
                        if g is None:
                            continue
                        if grads[k] is None:
                            grads[k] = g.new_zeros((n_rows, *g.shape), dtype=torch.float32)
                        grads[k][row] = g.float()
            if summed:
                for g in grads:
                    if g is not None:
                        g[0] = g[1:].sum(dim=0)
            _check_finite(grads, alphas[chunk])
            ticker.advance(chunk.stop - chunk.start, len(rows))
            yield chunk, grads


def embedding_path(start: Any, end: Any, alphas: np.ndarray) -> Points:
    """Points start + alphas[k] * (end - start) of (tokens, hidden) embeddings."""
    import torch

    origin, direction = start.float(), (end - start).float()

    def points(chunk: slice) -> tuple[Any, None]:
        alpha = torch.tensor(alphas[chunk], dtype=torch.float32, device=start.device)
        return (origin + alpha[:, None, None] * direction).to(end.dtype), None

    return points


def _add(total: Any, grad: Any) -> Any:
    if total is None:
        return grad
    return total if grad is None else total + grad


@contextmanager
def frozen_parameters(module: Any) -> Iterator[None]:
    """Parameters stop requiring gradients for a while: autograd then saves no layer
    inputs for weight gradients, which roughly halves the memory a backward needs."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _check_finite(grads: list[Any], alphas: np.ndarray) -> None:
    import torch

    if not all(bool(torch.isfinite(g).all()) for g in grads if g is not None):
        raise ValueError(
            f"the gradients are not finite at path points alpha in [{alphas.min():.3g}, "
            f"{alphas.max():.3g}]: embeddings near zero make the model's normalization layers "
            "divide by almost nothing (the first token of a prompt without BOS is the usual "
            "case); use a token or text baseline instead of 'zero', or method='gausslegendre', "
            "which never evaluates the path's end points"
        )


def aggregate(per_dimension: Any, how: str) -> np.ndarray:
    """(n_outputs, n_tokens, hidden) -> (n_outputs, n_tokens): sum or L2 norm over hidden."""
    reduced = per_dimension.sum(dim=-1) if how == "sum" else per_dimension.norm(dim=-1)
    return reduced.cpu().double().numpy()  # MPS has no float64


def endpoint_logprobs(model: Any, embeds: list[Any], job: Job) -> list[np.ndarray]:
    """Each continuation's token log-probs at whole embedding sequences, without
    gradients: one (len(embeds), len(continuation)) array per continuation."""
    import torch

    with torch.no_grad():
        stacked = torch.stack([e.to(model.dtype) for e in embeds])
        # MPS has no float64
        return [
            model.target_logprobs(stacked, c).cpu().double().numpy() for c in job.scored_targets
        ]


def chunk_size(internal_batch_size: int | None, n_tokens: int) -> int:
    if internal_batch_size is None:
        return max(1, DEFAULT_GRADIENT_TOKENS // n_tokens)
    check_positive_int("internal_batch_size", internal_batch_size)
    return int(internal_batch_size)


def output_values(objective: Objective, logprobs: list[np.ndarray], per_token: bool) -> np.ndarray:
    """f at whole embedding sequences, as rows [whole target (, each token)] per sequence."""
    values = objective.outputs(logprobs)
    return values if per_token else values[:, :1]
