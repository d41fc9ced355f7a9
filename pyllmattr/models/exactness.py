"""What ``load_gguf(deterministic=...)`` means: which layout the engine scores with, and
whether its scores are batch-invariant by construction (docs/numerics.md).

- ``None`` (the default): "exact where guaranteed". On llama.cpp's CPU back end
  (``n_gpu_layers=0``) the exact layout; with layers on a GPU the fast layout, whose
  attributions report a measured noise floor.
- ``True``: the exact layout on any back end; guaranteed only on the CPU back end (GPU
  kernels are not covered, so there the noise floor is still measured).
- ``False``: the fast layout (flash attention as llama.cpp chooses, token-level prefix
  sharing); every attribution measures its noise floor.

A third layout, ``Layout.flash64`` (0.1's batch-invariant layout: flash attention, 64-cell
tiles, 2.5-3x slower), is kept only for benchmarks to compare costs with; no public
argument selects it (``pyllmattr._bench.load_gguf_layout``).
"""

from __future__ import annotations

import enum
from typing import Any

from .._native import _core

Deterministic = bool | None


class Layout(enum.Enum):
    """The engine's scoring layouts, one name each from Python to C++ (``Layout`` in
    csrc/engine.h, bound as ``_core.Layout``).

    Example:
        >>> resolve_layout(None, n_gpu_layers=0)
        <Layout.exact: 'exact'>
        >>> resolve_layout(None, n_gpu_layers=-1).guaranteed(n_gpu_layers=-1, n_swa=0)
        False
    """

    fast = "fast"  # flash attention as llama.cpp chooses: scores depend on the batch
    exact = "exact"  # flash attention off, cells placed in SIMD-width blocks
    flash64 = "flash64"  # 0.1's 64-cell flash-attention layout (benchmarks only)

    @property
    def batch_invariant(self) -> bool:
        """The layout is built to score a sequence the same in any batch (whether or not
        that is guaranteed on the back end that runs it: :meth:`guaranteed`)."""
        return self is not Layout.fast

    def guaranteed(self, n_gpu_layers: int, n_swa: int) -> bool:
        """Whether scores in this layout are batch-invariant by construction on a model
        with ``n_gpu_layers`` offloaded layers and a sliding window of ``n_swa`` (0: none):
        only on llama.cpp's CPU back end (GPU kernels are not covered), and the flash64
        layout is not exact on sliding-window models."""
        if n_gpu_layers != 0:
            return False
        return self is Layout.exact or (self is Layout.flash64 and n_swa == 0)

    @property
    def native(self) -> Any:
        """The engine's value of this layout (``_core.Layout``)."""
        return _core.Layout.__members__[self.value]

    @classmethod
    def of_native(cls, value: Any) -> Layout:
        """The layout of an engine value (``_core.Layout``)."""
        return cls(value.name)


def resolve_layout(deterministic: Deterministic, n_gpu_layers: int) -> Layout:
    """The layout ``load_gguf`` gives a model (see the module docstring)."""
    if deterministic is None:
        deterministic = int(n_gpu_layers) == 0
    if not isinstance(deterministic, bool):
        raise ValueError(
            "deterministic must be True (the exact layout), False (the fast one) or None "
            f"(exact on the CPU back end), got {deterministic!r}"
        )
    return Layout.exact if deterministic else Layout.fast
