"""Saliency and input x gradient: one gradient at the prompt's own embeddings."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .gradient import (
    GradientMethod,
    Trial,
    TrialInput,
    aggregate,
    chunk_gradients,
    embedding_path,
    endpoint_logprobs,
    weighted_sums,
)
from .layers import EMBEDDINGS, Probe


class _PointGradient(GradientMethod):
    """Gradients at the prompt's embeddings x (one forward, one backward per output)."""

    def trial(self, inputs: TrialInput) -> Trial:
        job, options = inputs.job, inputs.options
        n_prompt = len(job.encoding.reference_ids)
        x = self.model.embed(job.encoding.reference_ids)
        probe = Probe(self.model, options["layer"])
        one = np.ones(1)
        # A path of one point at its end (alpha = 1): the gradient at x itself.
        per_token = bool(options["per_token"])
        at_input = embedding_path(x * 0, x, one)
        chunks = chunk_gradients(probe, at_input, one, job, per_token, 1, inputs.ticker)
        totals = weighted_sums(chunks, [one])[0]
        # The layer's output at x (Captum's LayerGradientXActivation multiplies by it).
        activations = probe.activations(x, job.scored_targets[:1])[0][:n_prompt]
        grads = probe.prompt_part(totals, n_prompt)
        per_dimension = self.per_dimension(activations.float(), grads, options)
        return Trial(
            values=aggregate(per_dimension, options["aggregate"]) @ inputs.weights,
            input_logprobs=[lp[0] for lp in endpoint_logprobs(self.model, [x], job)],
        )

    def per_dimension(self, inputs: Any, grads: Any, options: dict[str, Any]) -> Any:
        raise NotImplementedError


class Saliency(_PointGradient):
    """How strongly the target reacts to each token: the gradient of the target's
    log-probability with respect to the token's input embedding.

    Per token: the L2 norm of the gradient over the embedding dimension
    (``aggregate="l2"``, the default), or the sum of its absolute values
    (``aggregate="sum"``; Captum's ``Saliency`` summed over the embedding); summed
    over each feature's tokens. ``abs=False`` keeps the gradient's sign (with
    ``aggregate="sum"``). Saliency is always >= 0 with ``abs=True``: it says how
    sensitive the target is to a feature, not in which direction. ``layer``: an inner
    layer (a decoder layer's index or a module name) takes the gradient at that
    layer's output instead of the input embeddings.

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL")
        >>> pla.Saliency(tm).attribute(inp, target=" and").seq_attr  # doctest: +SKIP
    """

    name = "saliency"
    defaults: ClassVar[dict[str, Any]] = {
        "abs": True,
        "aggregate": "l2",
        "per_token": True,
        "layer": EMBEDDINGS,
    }

    def per_dimension(self, inputs: Any, grads: Any, options: dict[str, Any]) -> Any:
        return grads.abs() if options["abs"] else grads


class InputXGradient(_PointGradient):
    """Input x gradient: each token's embedding times the target's gradient at it,
    summed over the embedding dimension (``aggregate="l2"``: its L2 norm), then over
    each feature's tokens. A first-order estimate of the change from zeroing the
    feature's embeddings. ``layer``: an inner layer (a decoder layer's index or a
    module name) multiplies that layer's output by its gradient instead (Captum's
    ``LayerGradientXActivation``).

    Example:
        >>> tm = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> inp = pla.TextTemplateInput.from_text("Dave lives in Palm Coast, FL")
        >>> pla.InputXGradient(tm).attribute(inp, target=" and").seq_attr  # doctest: +SKIP
    """

    name = "input-x-gradient"
    defaults: ClassVar[dict[str, Any]] = {
        "aggregate": "sum",
        "per_token": True,
        "layer": EMBEDDINGS,
    }

    def per_dimension(self, inputs: Any, grads: Any, options: dict[str, Any]) -> Any:
        return inputs * grads
