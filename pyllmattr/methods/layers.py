"""Where a gradient method takes its gradients: the input embeddings or an inner layer.

``layer="embeddings"`` (the default) differentiates the target with respect to the
input embeddings. An inner layer (a decoder layer's index, or any module's name in
``model.named_modules()``) is hooked: its output at each token position becomes the
variable, as Captum's layer methods do. Either replaced by given values (integrated
gradients interpolates between the layer's activations on the baseline and on the
prompt) or captured (the other methods: the forward runs on input embeddings and the
gradient is taken where the layer's output leaves it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

EMBEDDINGS = "embeddings"


def resolve_layer(model: Any, layer: Any) -> tuple[str, Any]:
    """(canonical name, module or None for the input embeddings) of a ``layer=`` value."""
    if isinstance(layer, str) and layer == EMBEDDINGS:
        return EMBEDDINGS, None
    import numpy as np

    if isinstance(layer, np.integer):
        layer = int(layer)
    named = dict(model.model.named_modules())
    decoders = decoder_layer_names(model.model)
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise ValueError(
            f"layer must be 'embeddings', a decoder layer index or a module name, got "
            f"{type(layer).__name__}; {_valid(decoders)}"
        )
    if isinstance(layer, int):
        if not -len(decoders) <= layer < len(decoders):
            raise ValueError(f"layer {layer} is out of range; {_valid(decoders)}")
        name = decoders[layer]
    elif layer in named and layer != "":
        name = layer
    else:
        raise ValueError(f"unknown layer {layer!r}; {_valid(decoders)}")
    module = named[name]
    if module is model.model.get_input_embeddings():
        return EMBEDDINGS, None  # inputs_embeds bypass this module: use the embeddings path
    return name, module


def decoder_layer_names(module: Any) -> list[str]:
    """Names of the model's decoder layers: the module list as long as the layer count."""
    import torch

    count = getattr(getattr(module, "config", None), "num_hidden_layers", None)
    for name, child in module.named_modules():
        if isinstance(child, torch.nn.ModuleList) and len(child) == count:
            return [f"{name}.{i}" for i in range(len(child))]
    return []


def _valid(decoders: list[str]) -> str:
    if not decoders:
        return "valid layers: 'embeddings' or a module name from model.model.named_modules()"
    return (
        f"valid layers: 'embeddings', a decoder layer index 0..{len(decoders) - 1} (negative "
        f"counts from the end) or a module name such as {decoders[0]!r} ... {decoders[-1]!r} "
        f"(any name in model.model.named_modules() whose output has one vector per token)"
    )


class Probe:
    """Gradients of target log-probs at the input embeddings or at one layer's output.

    ``scored(inputs, continuations, replace)`` runs one forward per continuation on
    input embeddings ``inputs`` (batch, prompt tokens, hidden) and returns the
    tensors to differentiate (``leaves``) and each continuation's log-probs;
    ``prompt_part(grads)`` turns the leaves' gradients into one (batch, prompt tokens,
    width) gradient at the prompt's positions.
    """

    def __init__(self, model: Any, layer: Any) -> None:
        self.model = model
        self.name, self.module = resolve_layer(model, layer)

    @property
    def at_embeddings(self) -> bool:
        return self.module is None

    def activations(self, embeds: Any, continuations: Sequence[Sequence[int]]) -> list[Any]:
        """The layer's output (no gradient) on prompt embeddings (tokens, hidden) or a
        batch of them, teacher-forcing each continuation: one ([batch,] tokens +
        len(c) - 1, width) tensor per continuation."""
        import torch

        if self.at_embeddings:
            return [embeds for _ in continuations]
        batch = embeds if embeds.dim() == 3 else embeds[None]
        out = []
        with torch.no_grad():
            for c in continuations:
                length = batch.shape[1] + len(c) - 1
                with self._hooked(lambda output, index: output, length) as seen:
                    self.model.target_logprobs(batch.to(self.model.dtype), c)
                out.append(seen[0] if embeds.dim() == 3 else seen[0][0])
        return out

    def scored(
        self,
        inputs: Any,
        continuations: Sequence[Sequence[int]],
        replace: list[Any] | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """(leaves, log-probs per continuation); ``replace[k]`` (batch, length, width)
        replaces the layer's output in continuation k's forward when given."""
        if self.at_embeddings:
            inputs.requires_grad_(True)
            return [inputs], [self.model.target_logprobs(inputs, c) for c in continuations]
        leaves, scored = [], []
        for k, c in enumerate(continuations):

            def swap(output: Any, index: int, k: int = k) -> Any:
                # A leaf of its own: the backward stops here, and its gradient is ours.
                value = output.detach() if replace is None else replace[k]
                return value.requires_grad_(True)

            with self._hooked(swap, inputs.shape[1] + len(c) - 1) as seen:
                scored.append(self.model.target_logprobs(inputs, c))
            leaves.append(seen[0])
        return leaves, scored

    def prompt_part(self, grads: Sequence[Any], n_prompt: int) -> Any:
        """Sum of the leaves' gradients at the prompt's positions (the prompt's layer
        output is the same in every continuation's forward: attention is causal)."""
        parts = [g[..., :n_prompt, :] for g in grads if g is not None]
        return sum(parts[1:], parts[0])

    @contextmanager
    def _hooked(self, make: Any, length: int) -> Iterator[list[Any]]:
        """Forward hook replacing the layer's output by ``make(output, index)``; yields
        the list of tensors it returned (one per call)."""
        seen: list[Any] = []

        def hook(module: Any, args: Any, output: Any) -> Any:
            first = output[0] if isinstance(output, tuple) else output
            self._check_shape(first, length)
            value = make(first, len(seen))
            seen.append(value)
            return (value, *output[1:]) if isinstance(output, tuple) else value

        handle = self.module.register_forward_hook(hook)
        try:
            yield seen
        finally:
            handle.remove()
        if len(seen) != 1:
            raise ValueError(
                f"layer {self.name!r} ran {len(seen)} times in one forward; attribute to a "
                "module that runs once per forward (a decoder layer or a part of one)"
            )

    def _check_shape(self, output: Any, length: int) -> None:
        import torch

        tensor = isinstance(output, torch.Tensor)
        if not tensor or output.dim() != 3 or output.shape[1] != length:
            shape = tuple(output.shape) if tensor else type(output).__name__
            raise ValueError(
                f"layer {self.name!r} outputs {shape}, not one vector per token (batch, "
                f"{length} tokens, width); attribute to a decoder layer or one of its parts"
            )
