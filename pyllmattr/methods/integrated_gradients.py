"""Integrated gradients on the input embeddings of a PyTorch model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._checks import check_positive_int
from .._warnings import warn
from ..models.interface import token_list
from ..pipeline import Job
from .convergence import (
    AUTO,
    AutoPoints,
    announced_points,
    auto_defaults,
    check_auto_options,
    half_rule,
    relative_change,
    warn_half_check,
)
from .gradient import (
    PATH_DEFAULTS,
    GradientMethod,
    Points,
    Trial,
    TrialInput,
    aggregate,
    chunk_gradients,
    chunk_size,
    embedding_path,
    endpoint_logprobs,
    output_values,
    weighted_sums,
)
from .layers import Probe

INTEGRATION_METHODS = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
)
ZERO = "zero"
# Warn when sum(attributions) misses f(input) - f(baseline) by more than this fraction of
# the change, or by more than this many nats (probability units) when the change is below 1.
GAP_TOLERANCE = 0.05


class IntegratedGradients(GradientMethod):
    """Integrated gradients of the target's log-probability along a straight path from
    baseline embeddings to the prompt's embeddings.

    Attribution of token i (for output f) is ``sum_d (x - x')_id * integral_0^1
    df/dx_id(x' + a (x - x')) da``, integrated with ``n_steps`` points (``method``
    ``"gausslegendre"``, Captum's default, or ``"riemann_trapezoid"``, ``"riemann_left"``,
    ``"riemann_right"``, ``"riemann_middle"``), summed over the embedding dimension
    (``aggregate="l2"``: its L2 norm instead), then over each feature's tokens.

    ``n_steps="auto"`` doubles the points (16, 32, ...) until no feature's value moves
    by more than ``rtol`` (default 0.02) of the largest |attribution| between the last
    two estimates and the completeness gap is within ``rtol`` of it too (or below
    0.001), or the next doubling would pass ``max_steps`` (default 1024; a warning
    then); it costs about twice the final point count, since Gauss-Legendre points of
    successive rules differ. With a fixed ``n_steps`` the same gradients
    also give an estimate from every other point (a rule of half the points); when it
    differs by more than 10 % of the largest |attribution| a warning names
    ``n_steps="auto"``: on short prompts 32-50 points can be far from converged while
    the completeness gap is small. ``result.convergence`` records either check:
    ``n_steps`` used, ``last_change`` (relative to the largest |attribution|),
    ``rtol``, ``converged`` and, for ``"auto"``, ``n_points`` (all points evaluated),
    ``last_gap`` (the last gap relative to the largest |attribution|) and ``history``
    ([n_steps, change] per doubling).

    ``baselines``: ``None`` uses the input's own baselines (the prompt rendered with
    every feature at its baseline, which must have the same number of tokens as the
    prompt); a token id replaces every feature token; ``"zero"`` gives feature tokens
    zero embeddings; a text or a list of token ids is a whole baseline prompt of the
    prompt's token length. Tokens outside all features keep their embedding.

    Completeness: the attributions of each output sum to f(prompt) - f(baseline) up to
    the integration error, reported per target token in ``result.completeness_gap``
    (``result.seq_completeness_gap`` for the whole target); a warning suggests a larger
    ``n_steps`` when it is large. A small gap does not mean converged per-feature
    values (errors of opposite sign cancel in the sum): ``result.convergence`` does.

    ``layer``: ``"embeddings"`` (default), or an inner layer (a decoder layer's index
    or a module name): the path then runs from the layer's activations on the
    baseline prompt to those on the prompt (Captum's ``LayerIntegratedGradients``),
    and the gap also counts the target positions' share at that layer.
    ``internal_batch_size`` points go through each forward (default: about 1024
    tokens per forward). ``per_token=False`` skips per-token
    attributions (one backward per forward instead of one per target token).

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> inp = pla.TextTokenInput("Dave lives in Palm Coast, FL", tm)  # doctest: +SKIP
        >>> result = pla.IntegratedGradients(tm).attribute(  # doctest: +SKIP
        ...     inp, target=" and", n_steps="auto")
        >>> result.convergence["n_steps"], result.completeness_gap  # doctest: +SKIP
    """

    name = "integrated-gradients"
    auto_options: ClassVar[frozenset[str]] = frozenset({"n_steps"})
    defaults: ClassVar[dict[str, Any]] = {
        "n_steps": 50,
        "method": "gausslegendre",
        **PATH_DEFAULTS,
        **auto_defaults("max_steps"),
    }

    def n_points(self, options: dict[str, Any]) -> int:
        return announced_points(options, "n_steps")

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        check_auto_options(options, "n_steps", "max_steps")
        if options["method"] not in INTEGRATION_METHODS:
            raise ValueError(
                f"method must be one of {INTEGRATION_METHODS}, got {options['method']!r}"
            )
        return super().check_options(options)

    def trial(self, inputs: TrialInput) -> Trial:
        path = self._path(inputs)
        options = inputs.options
        if options["n_steps"] == AUTO:
            estimate, convergence = self._auto(inputs, path)
        else:
            estimate, convergence = self._fixed(inputs, path)
        _warn_on_gap(estimate.gap, path.change, convergence["n_steps"], options["method"])
        return Trial(
            values=estimate.values,
            input_logprobs=[lp[0] for lp in path.logprobs],
            baseline_logprob=float(path.logprobs[0][1].sum()),
            gap=estimate.gap,
            convergence=convergence,
        )

    def _fixed(self, inputs: TrialInput, path: _Path) -> tuple[_Estimate, dict[str, Any]]:
        """``n_steps`` points, checked against the rule of every other point (free: the
        same gradients, other weights)."""
        n, method = int(inputs.options["n_steps"]), inputs.options["method"]
        alphas, weights = integration_points(method, n)
        if n < 2:
            return self._integrate(inputs, path, alphas, [weights])[0], {"n_steps": n}
        full, half = self._integrate(inputs, path, alphas, [weights, half_rule(method, alphas)])
        change = relative_change(half.values[0], full.values[0])
        warn_half_check("integrated gradients", "n_steps", n, change)
        return full, AutoPoints.half_record(n, change)

    def _auto(self, inputs: TrialInput, path: _Path) -> tuple[_Estimate, dict[str, Any]]:
        """Double the points until the estimate settles (see ``n_steps="auto"``)."""
        auto = AutoPoints.from_options(inputs.options, "max_steps", "integrated gradients")
        method, estimate = inputs.options["method"], None
        for n in auto.counts():
            if n > auto.start:  # the first level was announced by n_points
                inputs.ticker.extend(n)
            alphas, weights = integration_points(method, n)
            new = self._integrate(inputs, path, alphas, [weights])[0]
            previous = None if estimate is None else estimate.values[0]
            done = auto.step(n, previous, new.values[0], gap=float(new.gap[0]))
            estimate = new
            if done:
                break
        assert estimate is not None  # auto.counts() yields at least one count
        return estimate, auto.record("n_steps")

    def _integrate(
        self, inputs: TrialInput, path: _Path, alphas: np.ndarray, weight_sets: list[np.ndarray]
    ) -> list[_Estimate]:
        """One gradient pass over ``alphas``; an estimate per quadrature weight vector."""
        job, n_prompt = inputs.job, path.n_prompt
        chunks = chunk_gradients(
            path.probe, path.points(alphas), alphas, job, path.per_token, path.batch,
            inputs.ticker,
        )  # fmt: skip
        estimates = []
        for totals in weighted_sums(chunks, weight_sets):
            per_dimension = path.deltas[0][:n_prompt] * path.probe.prompt_part(totals, n_prompt)
            # At an inner layer the target's own positions move too: their share counts
            # in the gap (the integration error), though it belongs to no feature.
            outside = sum(
                (d[n_prompt:] * t[:, n_prompt:]).sum(dim=(1, 2)).double().cpu().numpy()
                for d, t in zip(path.deltas, totals, strict=True)
                if t is not None
            )
            gap = aggregate(per_dimension, "sum").sum(axis=1) + outside - path.change
            values = aggregate(per_dimension, inputs.options["aggregate"]) @ inputs.weights
            estimates.append(_Estimate(values, gap))
        return estimates

    def _path(self, inputs: TrialInput) -> _Path:
        """The path from the baseline to the prompt: at the input embeddings, or at an
        inner layer from its activations on the baseline to those on the prompt
        (Captum's ``LayerIntegratedGradients``), one pair per continuation."""
        job, options = inputs.job, inputs.options
        ids = job.encoding.reference_ids
        x = self.model.embed(ids)
        baseline = baseline_embeddings(self.model, job, x, options["baselines"], inputs.rng)
        longest = max(map(len, job.scored_targets))
        probe = Probe(self.model, options["layer"])
        logprobs = endpoint_logprobs(self.model, [x, baseline], job)
        per_token = bool(options["per_token"])
        f_input, f_baseline = output_values(job.objective, logprobs, per_token)
        common = {
            "probe": probe,
            "n_prompt": len(ids),
            "batch": chunk_size(options["internal_batch_size"], len(ids) + longest - 1),
            "per_token": per_token,
            "logprobs": logprobs,
            "change": f_input - f_baseline,
        }
        if probe.at_embeddings:
            return _Path(
                deltas=[(x - baseline).float()],
                points=lambda alphas: embedding_path(baseline, x, alphas),
                **common,
            )
        starts = probe.activations(baseline, job.scored_targets)
        ends = probe.activations(x, job.scored_targets)
        deltas = [(e - s).float() for s, e in zip(starts, ends, strict=True)]
        return _Path(
            deltas=deltas, points=lambda alphas: layer_path(x, starts, deltas, alphas), **common
        )


@dataclass
class _Path:
    """One trial's path: where the gradients are taken, the leaves' end - start
    (``deltas``), ``points(alphas)``, and f at both ends (``logprobs``: per
    continuation, rows [prompt, baseline]; ``change``: f(prompt) - f(baseline))."""

    probe: Probe
    n_prompt: int
    batch: int
    per_token: bool
    logprobs: list[np.ndarray]
    change: np.ndarray
    deltas: list[Any]
    points: Any  # alphas -> Points


@dataclass
class _Estimate:
    """One quadrature's attributions (1 [+ T], n_features) and completeness gap."""

    values: np.ndarray
    gap: np.ndarray


def layer_path(inputs: Any, starts: list[Any], deltas: list[Any], alphas: np.ndarray) -> Points:
    """Points of a path at an inner layer: the prompt's input embeddings, with the
    layer's output replaced by start + alpha * delta (one leaf per continuation)."""
    import torch

    def points(chunk: slice) -> tuple[Any, list[Any]]:
        alpha = torch.tensor(alphas[chunk], dtype=torch.float32, device=inputs.device)
        alpha = alpha[:, None, None]
        # Leaves of their own (the hook differentiates with respect to them).
        replace = [(s.float() + alpha * d).to(s.dtype) for s, d in zip(starts, deltas, strict=True)]
        return inputs.expand(len(alpha), -1, -1), replace

    return points


def integration_points(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and their weights for integrating along the path."""
    check_positive_int("n_steps", n_steps)
    n = int(n_steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2")
        weights = np.full(n, 1 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0, 1, n), weights
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        raise ValueError(f"method must be one of {INTEGRATION_METHODS}, got {method!r}")
    return (np.arange(n) + offsets[method]) / n, np.full(n, 1 / n)


def baseline_embeddings(
    model: Any, job: Job, inputs: Any, baselines: Any, rng: np.random.Generator
) -> Any:
    """The path's start: the prompt's embeddings with feature tokens at their baseline.

    A baseline text or list of ids is the user's part of the prompt: with ``chat=`` it
    goes inside the same chat frame as the prompt, so both have the same length.
    """
    encoding = job.encoding
    ids = encoding.reference_ids
    in_feature = np.zeros(len(ids), dtype=bool)
    for tokens in encoding.feature_positions or []:
        in_feature[tokens] = True
    if isinstance(baselines, str) and baselines == ZERO:
        import torch

        keep = torch.as_tensor(~in_feature, device=inputs.device)[:, None]
        return inputs * keep.to(inputs.dtype)
    if isinstance(baselines, (int, np.integer)) and not isinstance(baselines, bool):
        token = token_list([baselines], model.n_vocab, "baselines")[0]
        chosen = np.where(in_feature, token, np.asarray(ids, dtype=np.int64))
        return model.embed(chosen)
    if baselines is None:
        base_ids = encoding.render(np.zeros(encoding.n_features, dtype=bool), rng)
        source = "the input's baselines render"
    elif isinstance(baselines, str):
        base_ids, source = job.tokenize_prompt(model, baselines), "the baseline text tokenizes"
    elif isinstance(baselines, (list, tuple, np.ndarray)):
        user_ids = token_list(baselines, model.n_vocab, "baselines")
        base_ids, source = job.prompt_ids(user_ids), "the baseline ids are"
    else:
        raise ValueError(
            "baselines must be None (the input's baselines), a token id, 'zero', a text "
            f"or a list of token ids, got {type(baselines).__name__}"
        )
    _check_aligned(model, ids, base_ids, in_feature, source)
    return model.embed(base_ids)


def _check_aligned(
    model: Any, ids: list[int], base_ids: list[int], in_feature: np.ndarray, source: str
) -> None:
    """The path runs token by token: the baseline prompt must have the prompt's length and
    differ from it only at feature tokens, or attributions would land outside features."""
    fix = (
        "pass baselines=<token id> (e.g. 0) or baselines='zero' to replace feature tokens "
        "in place, or give every feature a baseline with as many tokens as its value"
    )
    if len(base_ids) != len(ids):
        raise ValueError(
            f"integrated gradients interpolates token by token between the prompt and a "
            f"baseline prompt of the same length: the prompt has {len(ids)} tokens, but "
            f"{source} to {len(base_ids)} ({model.detokenize(base_ids)!r}); {fix}"
        )
    differ = np.asarray(ids) != np.asarray(base_ids)
    outside = np.flatnonzero(differ & ~in_feature)
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"the baseline prompt differs from the prompt at token {i} "
            f"({model.token_to_str(ids[i])!r} vs {model.token_to_str(base_ids[i])!r}), "
            f"which belongs to no feature (the tokens of the baselines are shifted); {fix}"
        )


def _warn_on_gap(gap: np.ndarray, change: np.ndarray, n_steps: int, method: str) -> None:
    """Warn when the attributions' sum misses f(input) - f(baseline) by much."""
    worst = int(np.argmax(np.abs(gap) - GAP_TOLERANCE * np.maximum(np.abs(change), 1.0)))
    if abs(gap[worst]) > GAP_TOLERANCE * max(abs(change[worst]), 1.0):
        warn(
            f"integrated gradients: the attributions miss f(input) - f(baseline) = "
            f"{change[worst]:.4f} by {gap[worst]:+.4f} (output {worst}, {method}, "
            f"n_steps={n_steps}); raise n_steps (or pass n_steps='auto') for a closer "
            "approximation"
        )
