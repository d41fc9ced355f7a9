"""The shared machinery of the gradient methods: gradients of every target token's
log-probability with respect to the prompt's input embeddings, on a PyTorch model.

One forward per chunk of embedding points teacher-forces the whole target, so all
target positions share it; then one backward per target token runs through the
retained graph (reverse mode costs one backward per output row; a token's
attribution is exact and needs its own row). With ``attr_target="log_prob"`` the
whole target's gradient is the sum of the token gradients (the log-probabilities
add up), so it costs no backward of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from ..cancel import Cancelled
from ..inputs.base import Encoding, InterpretableInput
from ..progress import check_progress, progress_callback
from ..results import AttributionResult
from .base import ATTR_TARGETS, build_result, check_positive_int, resolve_target, to_outputs

AGGREGATES = ("sum", "l2")
# Tokens (batch x sequence length) per gradient forward when internal_batch_size is None.
DEFAULT_GRADIENT_TOKENS = 1024


class GradientMethod:
    """Base of the gradient methods: attribute through gradients of the input embeddings.

    A subclass defines ``name``, ``defaults`` and ``trial(...)``; this
    class resolves the input and the target, reports progress, and sums per-token
    attributions into features.

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> method = pla.METHODS["integrated-gradients"](tm)  # doctest: +SKIP
        >>> isinstance(method, pla.GradientMethod)  # doctest: +SKIP
        True
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "target_logprobs"):
            raise ValueError(
                f"{type(self).__name__} needs gradients, which llama.cpp does not provide: "
                "load the model with pla.load_torch(hf_model, tokenizer), or the same GGUF "
                "file with pla.load_torch_gguf(path)"
            )
        self.model = model

    def attribute(
        self,
        inp: InterpretableInput,
        target: str | Sequence[int] | None = None,
        attr_target: str = "log_prob",
        gen_args: Mapping[str, Any] | None = None,
        num_trials: int = 1,
        seed: int | None = None,
        progress: Any = None,
        cancel: Any = None,
        chat: Any = False,
        **options: Any,
    ) -> AttributionResult:
        """Attribute the target's (log-)probability to the input's features.

        ``target=None`` generates it greedily (``gen_args``). Per-token attributions
        are summed over each feature's tokens. ``num_trials > 1`` repeats with a
        newly sampled baseline (``ProductBaselines``) and reports mean and spread.
        ``progress`` works as for perturbation methods (None: a bar on long runs in
        terminals and notebooks, True, False, or ``progress(done, total)`` counting
        embedding points; returning False cancels, as does ``cancel.cancel()``, both
        raising :class:`pyllmattr.Cancelled`). Chat templates (``chat=``) are not
        supported by gradient methods yet.
        """
        started = time.perf_counter()
        options = self._check_options(options)
        check_progress(progress)
        if chat:
            raise ValueError(
                f"{type(self).__name__} does not support chat= yet; put the chat template "
                "into the prompt yourself (model.apply_chat_template) or use a perturbation method"
            )
        if attr_target not in ATTR_TARGETS:
            raise ValueError(f"attr_target must be one of {ATTR_TARGETS}, got {attr_target!r}")
        check_positive_int("num_trials", num_trials)
        if not isinstance(inp, InterpretableInput):
            raise ValueError(
                "inp must be a pla.TextTokenInput or pla.TextTemplateInput, "
                f"got {type(inp).__name__}"
            )
        encoding = inp.encode(self.model)
        target_ids = resolve_target(self.model, encoding.reference_ids, target, gen_args)
        n_tokens = len(encoding.reference_ids) + len(target_ids)
        if n_tokens > self.model.n_ctx:
            raise ValueError(
                f"the prompt and target ({n_tokens} tokens) exceed the model's context of "
                f"{self.model.n_ctx} tokens; shorten the prompt or the target"
            )
        weights = feature_weights(encoding)
        rng = np.random.default_rng(seed)
        trials = []
        with progress_callback(progress, type(self).__name__) as report:
            ticker = Ticker(report, cancel, num_trials * self.n_points(options))
            for _ in range(num_trials):  # a loop, not a comprehension: warnings' stacklevel
                trials.append(
                    self.trial(encoding, target_ids, attr_target, weights, rng, ticker, options)
                )
        stats = {
            **ticker.stats,
            "n_tokens": len(encoding.reference_ids) + len(target_ids) - 1,
            "device": str(self.model.device),
            "seconds": time.perf_counter() - started,
        }
        return self._result(encoding, target_ids, trials, stats, attr_target, seed, options)

    # ------------------------------------------------------------ subclass API
    def n_points(self, options: dict[str, Any]) -> int:
        """Embedding points at which one trial takes gradients."""
        return 1

    def trial(
        self,
        encoding: Encoding,
        target_ids: list[int],
        attr_target: str,
        weights: np.ndarray,
        rng: np.random.Generator,
        ticker: Ticker,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """One attribution: per-feature values for [whole target, each token], and extras."""
        raise NotImplementedError

    # ------------------------------------------------------------ helpers
    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.attribute got unknown option(s) {unknown}; "
                f"its options are: {', '.join(self.defaults)}"
            )
        options = {**self.defaults, **options}
        if options.get("aggregate") not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {options['aggregate']!r}")
        return options

    def _result(
        self,
        encoding: Encoding,
        target_ids: list[int],
        trials: list[dict[str, Any]],
        stats: dict[str, Any],
        attr_target: str,
        seed: int | None,
        options: dict[str, Any],
    ) -> AttributionResult:
        values = np.stack([t["values"] for t in trials])
        reference = trials[0]["input_logprobs"]
        result = build_result(
            self, encoding, target_ids, reference, values, stats, attr_target, seed, options
        )
        per_token = result.token_attr is not None
        if "gap" in trials[0]:
            gaps = np.mean([t["gap"] for t in trials], axis=0)
            result.seq_completeness_gap = float(gaps[0])
            result.completeness_gap = gaps[1:] if per_token else None
            result.baseline_logprob = float(np.mean([t["baseline_logprob"] for t in trials]))
        return result


class Ticker:
    """Progress and cancellation between gradient chunks, and what the chunks cost."""

    def __init__(self, progress: Any, cancel: Any, total: int) -> None:
        self.progress, self.cancel, self.total = progress, cancel, total
        self.stats = {
            "n_evaluations": 0,
            "n_forward_calls": 0,
            "n_backward_calls": 0,
            "points_per_forward": 0,
        }

    def check(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled("attribution cancelled")

    def advance(self, n_points: int, n_backward: int) -> None:
        self.stats["n_evaluations"] += n_points
        self.stats["n_forward_calls"] += 1
        self.stats["n_backward_calls"] += n_backward
        self.stats["points_per_forward"] = max(self.stats["points_per_forward"], n_points)
        done = self.stats["n_evaluations"]
        if self.progress is not None and self.progress(done, self.total) is False:
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


def path_gradients(
    model: Any,
    start: Any,
    end: Any,
    alphas: np.ndarray,
    weights: np.ndarray,
    target_ids: list[int],
    attr_target: str,
    per_token: bool,
    batch_size: int,
    ticker: Ticker,
) -> Any:
    """sum_k weights[k] * grad f_j(start + alphas[k] * (end - start)) for every output j.

    Outputs are [whole target] or, with ``per_token``, [whole target, token 1, ...,
    token T]; returns a float32 tensor (n_outputs, n_tokens, hidden size).
    """
    import torch

    n_target = len(target_ids)
    total = torch.zeros((1 + n_target * per_token, *start.shape), device=start.device)
    origin, direction = start.float(), (end - start).float()
    with frozen_parameters(model.model):
        for lo in range(0, len(alphas), batch_size):
            ticker.check()
            alpha = torch.tensor(alphas[lo : lo + batch_size], dtype=torch.float32)
            weight = torch.tensor(weights[lo : lo + batch_size], dtype=torch.float32)
            alpha, weight = alpha.to(start.device), weight.to(start.device)
            points = (origin + alpha[:, None, None] * direction).to(model.dtype)
            points.requires_grad_(True)
            with torch.enable_grad():
                logprobs = model.target_logprobs(points, target_ids)
                rows = _output_rows(logprobs, attr_target, per_token)
                for i, (row, value) in enumerate(rows):
                    # Weighting before the backward sums the chunk's points in one gradient.
                    (grad,) = torch.autograd.grad(
                        (value * weight).sum(), points, retain_graph=i < len(rows) - 1
                    )
                    total[row] += grad.float().sum(dim=0)
            _check_finite(total, alphas[lo : lo + batch_size])
            ticker.advance(len(alpha), len(rows))
    if per_token and attr_target == "log_prob":
        total[0] = total[1:].sum(dim=0)
    return total


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


def _check_finite(total: Any, alphas: np.ndarray) -> None:
    import torch

    if not bool(torch.isfinite(total).all()):
        raise ValueError(
            f"the gradients are not finite at path points alpha in [{alphas.min():.3g}, "
            f"{alphas.max():.3g}]: embeddings near zero make the model's normalization layers "
            "divide by almost nothing (the first token of a prompt without BOS is the usual "
            "case); use a token or text baseline instead of 'zero', or method='gausslegendre', "
            "which never evaluates the path's end points"
        )


def _output_rows(logprobs: Any, attr_target: str, per_token: bool) -> list[tuple[int, Any]]:
    """(row of the result, per-point value) pairs that need a backward each."""
    tokens = [(1 + t, logprobs[:, t]) for t in range(logprobs.shape[1])] if per_token else []
    if attr_target == "prob":
        return [(0, logprobs.sum(dim=1).exp())] + [(row, v.exp()) for row, v in tokens]
    return tokens or [(0, logprobs.sum(dim=1))]


def aggregate(per_dimension: Any, how: str) -> np.ndarray:
    """(n_outputs, n_tokens, hidden) -> (n_outputs, n_tokens): sum or L2 norm over hidden."""
    reduced = per_dimension.sum(dim=-1) if how == "sum" else per_dimension.norm(dim=-1)
    return reduced.cpu().double().numpy()  # MPS has no float64


def endpoint_logprobs(model: Any, embeds: list[Any], target_ids: list[int]) -> np.ndarray:
    """Target token log-probs at whole embedding sequences, without gradients."""
    import torch

    with torch.no_grad():
        stacked = torch.stack([e.to(model.dtype) for e in embeds])
        logprobs = model.target_logprobs(stacked, target_ids)
    return logprobs.cpu().double().numpy()  # MPS has no float64


def chunk_size(internal_batch_size: int | None, n_tokens: int) -> int:
    if internal_batch_size is None:
        return max(1, DEFAULT_GRADIENT_TOKENS // n_tokens)
    check_positive_int("internal_batch_size", internal_batch_size)
    return int(internal_batch_size)


def output_values(logprobs: np.ndarray, attr_target: str, per_token: bool) -> np.ndarray:
    """f at whole embedding sequences, as rows [whole target (, each token)] per sequence."""
    values = to_outputs(logprobs, attr_target)
    return values if per_token else values[:, :1]
