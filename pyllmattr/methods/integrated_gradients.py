"""Integrated gradients on the input embeddings of a PyTorch model."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_positive_int
from .._warnings import warn
from ..models.interface import token_list
from ..pipeline import Job
from .gradient import (
    GradientMethod,
    Points,
    Ticker,
    aggregate,
    chunk_size,
    embedding_path,
    endpoint_logprobs,
    output_values,
    path_gradients,
)
from .layers import EMBEDDINGS, Probe

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

    ``baselines``: ``None`` uses the input's own baselines (the prompt rendered with
    every feature at its baseline, which must have the same number of tokens as the
    prompt); a token id replaces every feature token; ``"zero"`` gives feature tokens
    zero embeddings; a text or a list of token ids is a whole baseline prompt of the
    prompt's token length. Tokens outside all features keep their embedding.

    Completeness: the attributions of each output sum to f(prompt) - f(baseline) up to
    the integration error, reported per target token in ``result.completeness_gap``
    (``result.seq_completeness_gap`` for the whole target); a warning suggests a larger
    ``n_steps`` when it is large.

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
        >>> result = pla.IntegratedGradients(tm).attribute(inp, target=" and")  # doctest: +SKIP
        >>> result.completeness_gap  # doctest: +SKIP
    """

    name = "integrated-gradients"
    defaults: dict[str, Any] = {
        "n_steps": 50,
        "method": "gausslegendre",
        "internal_batch_size": None,
        "baselines": None,
        "aggregate": "sum",
        "per_token": True,
        "layer": EMBEDDINGS,
    }

    def n_points(self, options: dict[str, Any]) -> int:
        check_positive_int("n_steps", options["n_steps"])
        return int(options["n_steps"])

    def trial(
        self,
        job: Job,
        weights: np.ndarray,
        rng: np.random.Generator,
        ticker: Ticker,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        alphas, steps = integration_points(options["method"], options["n_steps"])
        ids = job.encoding.reference_ids
        inputs = self.model.embed(ids)
        baseline = baseline_embeddings(self.model, job, inputs, options["baselines"], rng)
        longest = max(map(len, job.scored_targets))
        batch = chunk_size(options["internal_batch_size"], len(ids) + longest - 1)
        per_token = bool(options["per_token"])
        probe = Probe(self.model, options["layer"])
        path, delta = self._path(probe, job, baseline, inputs, alphas)
        totals = path_gradients(probe, path, alphas, steps, job, per_token, batch, ticker)
        per_dimension = delta[0][: len(ids)] * probe.prompt_part(totals, len(ids))
        logprobs = endpoint_logprobs(self.model, [inputs, baseline], job)
        f_input, f_baseline = output_values(job.objective, logprobs, per_token)
        # At an inner layer the target's own positions move too: their share counts
        # in the gap (the integration error), though it belongs to no feature.
        outside = sum(
            (d[len(ids) :] * t[:, len(ids) :]).sum(dim=(1, 2)).double().cpu().numpy()
            for d, t in zip(delta, totals, strict=True)
            if t is not None
        )
        gap = aggregate(per_dimension, "sum").sum(axis=1) + outside - (f_input - f_baseline)
        _warn_on_gap(gap, f_input - f_baseline, options["n_steps"], options["method"])
        return {
            "values": aggregate(per_dimension, options["aggregate"]) @ weights,
            "input_logprobs": [lp[0] for lp in logprobs],
            "baseline_logprob": float(logprobs[0][1].sum()),
            "gap": gap,
        }

    def _path(
        self, probe: Probe, job: Job, baseline: Any, inputs: Any, alphas: np.ndarray
    ) -> tuple[Points, list[Any]]:
        """The path's points and (end - start) of each leaf: the input embeddings, or at
        an inner layer its activations on the baseline and on the prompt (Captum's
        ``LayerIntegratedGradients``), one pair per continuation."""
        if probe.at_embeddings:
            return embedding_path(baseline, inputs, alphas), [(inputs - baseline).float()]
        import torch

        starts = probe.activations(baseline, job.scored_targets)
        ends = probe.activations(inputs, job.scored_targets)
        deltas = [(e - s).float() for s, e in zip(starts, ends, strict=True)]

        def points(chunk: slice) -> tuple[Any, list[Any]]:
            alpha = torch.tensor(alphas[chunk], dtype=torch.float32, device=inputs.device)
            alpha = alpha[:, None, None]
            # Leaves of their own (the hook differentiates with respect to them).
            replace = [
                (s.float() + alpha * d).to(s.dtype) for s, d in zip(starts, deltas, strict=True)
            ]
            return inputs.expand(len(alpha), -1, -1), replace

        return points, deltas


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
    worst = int(np.argmax(np.abs(gap) - GAP_TOLERANCE * np.maximum(np.abs(change), 1.0)))
    if abs(gap[worst]) > GAP_TOLERANCE * max(abs(change[worst]), 1.0):
        warn(
            f"integrated gradients: the attributions miss f(input) - f(baseline) = "
            f"{change[worst]:.4f} by {gap[worst]:+.4f} (output {worst}, {method}, "
            f"n_steps={n_steps}); raise n_steps for a closer approximation"
        )
