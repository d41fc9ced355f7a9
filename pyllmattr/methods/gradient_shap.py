"""GradientShap (expected gradients) on the input embeddings or an inner layer."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..pipeline import Job
from .convergence import AUTO, AutoPoints, announced_points, auto_defaults, check_auto_options
from .gradient import (
    PATH_DEFAULTS,
    GradientMethod,
    Trial,
    TrialInput,
    aggregate,
    chunk_gradients,
    chunk_size,
    endpoint_logprobs,
)
from .integrated_gradients import baseline_embeddings
from .layers import Probe


class GradientShap(GradientMethod):
    """GradientShap: expected gradients over random points between baselines and the
    prompt (Captum's ``GradientShap`` / ``LayerGradientShap``).

    Each of ``n_samples`` samples draws a baseline b from the distribution
    ``baselines``, a point a uniformly in [0, 1] and, with ``stdevs > 0``, Gaussian
    noise e on the feature tokens' input embeddings (x' = x + e); its attribution is
    ``(x' - b) * grad f(b + a (x' - b))``, summed over the embedding dimension
    (``aggregate="l2"``: its L2 norm) and then over each feature's tokens. The result
    is their mean: an estimate of the SHAP values of a model that is linear between
    baseline and input (integrated gradients averaged over baselines, sampled).

    ``n_samples="auto"`` draws 16 samples, then as many again (the earlier ones are
    kept) until the mean moves by at most ``rtol`` (default 0.02) of the largest
    |attribution| between the last two totals, or the next doubling would pass
    ``max_samples`` (default 1024; a warning then). ``result.convergence`` records
    ``n_samples``, ``last_change``, ``rtol``, ``converged`` and ``history``.

    ``baselines``: ``None`` the input's own baselines (a ``ProductBaselines`` is
    sampled anew for every sample); a token id, ``"zero"``, a text or a list of token
    ids as for :class:`IntegratedGradients` (one baseline); a list of such baselines
    (texts, token ids, lists of ids) is a distribution sampled uniformly. A list of
    plain ints is one baseline prompt, as for integrated gradients.

    ``layer``: ``"embeddings"`` (default), or an inner layer (a decoder layer's index
    or a module name): the points are still drawn between input embeddings, the
    gradient is taken at the layer's output and multiplied by the layer's activations
    on x' minus those on b (Captum's ``LayerGradientShap``).

    The spread: ``result.seq_attr_std`` / ``token_attr_std`` are the standard
    deviations of the per-sample attributions (over all samples of all trials); the
    standard error of the mean is that over sqrt(n_samples * num_trials). Seeded by
    ``seed``.

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> inp = pla.TextTokenInput("Dave lives in Palm Coast, FL", tm, baselines=0)
        >>> result = pla.GradientShap(tm).attribute(  # doctest: +SKIP
        ...     inp, target=" and", n_samples=100, stdevs=0.01, seed=0)
        >>> result.seq_attr, result.seq_attr_std  # doctest: +SKIP
    """

    name = "gradient-shap"
    auto_options: ClassVar[frozenset[str]] = frozenset({"n_samples"})
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 50,
        "stdevs": 0.0,
        **PATH_DEFAULTS,
        **auto_defaults("max_samples"),
    }

    def n_points(self, options: dict[str, Any]) -> int:
        return announced_points(options, "n_samples")

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        stdevs = options.get("stdevs")
        if isinstance(stdevs, bool) or not isinstance(stdevs, (int, float)) or stdevs < 0:
            raise ValueError(f"stdevs must be a number >= 0 (0: no noise), got {stdevs!r}")
        check_auto_options(options, "n_samples", "max_samples")
        return super().check_options(options)

    def trial(self, inputs: TrialInput) -> Trial:
        x = self.model.embed(inputs.job.encoding.reference_ids)
        convergence = None
        if inputs.options["n_samples"] == AUTO:
            samples, convergence = self._auto(inputs, x)
        else:
            samples = self._samples(inputs, x, int(inputs.options["n_samples"]))
        return Trial(
            values=samples.mean(axis=0),
            samples=samples,
            input_logprobs=[lp[0] for lp in endpoint_logprobs(self.model, [x], inputs.job)],
            convergence=convergence,
        )

    def _auto(self, inputs: TrialInput, x: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Add samples (doubling the total) until their mean settles."""
        auto = AutoPoints.from_options(inputs.options, "max_samples", "GradientShap", "last")
        samples = np.zeros((0,))
        for n in auto.counts():
            new = n - len(samples)
            if n > auto.start:  # the first draw was announced by n_points
                inputs.ticker.extend(new)
            previous = samples.mean(axis=0) if len(samples) else None
            drawn = self._samples(inputs, x, new)
            samples = np.concatenate([samples, drawn]) if len(samples) else drawn
            if auto.step(n, None if previous is None else previous[0], samples.mean(axis=0)[0]):
                break
        return samples, auto.record("n_samples")

    def _samples(self, inputs: TrialInput, x: Any, n: int) -> np.ndarray:
        """``n`` samples' attributions (n, 1 [+ T], n_features)."""
        import torch

        job, options, rng = inputs.job, inputs.options, inputs.rng
        n_prompt = len(job.encoding.reference_ids)
        probe = Probe(self.model, options["layer"])
        noisy, base = self._draw(job, x, rng, n, float(options["stdevs"]), options["baselines"])
        alphas = rng.uniform(0.0, 1.0, n)
        longest = max(map(len, job.scored_targets))
        batch = chunk_size(options["internal_batch_size"], n_prompt + longest - 1)
        alpha_t = torch.tensor(alphas, dtype=torch.float32, device=x.device)[:, None, None]
        points = (base.float() + alpha_t * (noisy - base).float()).to(x.dtype)

        def at(chunk: slice) -> tuple[Any, None]:
            return points[chunk].clone(), None

        per_token = bool(options["per_token"])
        samples = []
        for chunk, grads in chunk_gradients(
            probe, at, alphas, job, per_token, batch, inputs.ticker
        ):
            scale = self._multiplier(probe, job, noisy[chunk], base[chunk], n_prompt)
            per_dimension = scale * probe.prompt_part(grads, n_prompt)  # (rows, chunk, ...)
            values = aggregate(per_dimension, options["aggregate"]) @ inputs.weights
            samples.append(values.transpose(1, 0, 2))  # (chunk, rows, features)
        return np.concatenate(samples)

    def _draw(
        self, job: Job, x: Any, rng: np.random.Generator, n: int, stdevs: float, baselines: Any
    ) -> tuple[Any, Any]:
        """Noisy inputs x' and baselines b, (n, tokens, hidden) each."""
        import torch

        choices = baseline_distribution(baselines)
        picks = rng.integers(len(choices), size=n)
        base = torch.stack(
            [baseline_embeddings(self.model, job, x, choices[k], rng) for k in picks]
        ).to(x.dtype)
        if stdevs == 0:
            return x.expand(n, -1, -1), base
        in_feature = np.zeros(len(x), dtype=bool)
        for tokens in job.encoding.feature_positions or []:
            in_feature[tokens] = True
        # Noise on feature tokens only: the rest of the prompt (a chat frame, fixed
        # text) stays the prompt's, as it does on the baselines.
        noise = rng.normal(0.0, stdevs, (n, *x.shape)) * in_feature[None, :, None]
        return x + torch.as_tensor(noise, dtype=x.dtype, device=x.device), base

    def _multiplier(self, probe: Probe, job: Job, noisy: Any, base: Any, n_prompt: int) -> Any:
        """x' - b at the embeddings; at a layer, its activations on x' minus on b."""
        if probe.at_embeddings:
            return (noisy - base).float()
        on_input = self._layer_outputs(probe, job, noisy)
        on_base = self._layer_outputs(probe, job, base)
        return (on_input - on_base)[:, :n_prompt].float()

    def _layer_outputs(self, probe: Probe, job: Job, embeds: Any) -> Any:
        """The layer's activations on a batch of prompts, each distinct prompt run once
        (samples share the input, and baselines repeat)."""
        import torch

        keys = [e.cpu().numpy().tobytes() for e in embeds]
        unique = list(dict.fromkeys(keys))
        first = [keys.index(k) for k in unique]
        one_token = [job.scored_targets[0][:1]]  # no forced target: the prompt's positions
        found = probe.activations(embeds[first], one_token)[0]
        row = {k: i for i, k in enumerate(unique)}
        return found[torch.tensor([row[k] for k in keys], device=found.device)]


def baseline_distribution(baselines: Any) -> list[Any]:
    """The baselines to sample from: a list of baselines, or one baseline (a list of
    ints is one baseline prompt)."""
    listed = isinstance(baselines, (list, tuple)) and bool(baselines)
    if listed and not all(isinstance(b, (int, np.integer)) for b in baselines):
        return list(baselines)
    return [baselines]
