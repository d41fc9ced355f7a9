"""What ``load_gguf(deterministic=...)`` means: which layout the engine scores with, and
whether its scores are batch-invariant by construction (docs/numerics.md).

- ``None`` (the default): "exact where guaranteed". On llama.cpp's CPU back end
  (``n_gpu_layers=0``) the exact layout; with layers on a GPU the fast default layout,
  whose attributions report a measured noise floor.
- ``True``: the exact layout on any back end; guaranteed only on the CPU back end (GPU
  kernels are not covered, so there the noise floor is still measured).
- ``False``: the fast default layout (flash attention as llama.cpp chooses, token-level
  prefix sharing); every attribution measures its noise floor.
- ``"flash64"``: the previous deterministic layout (flash attention, 64-cell tiles),
  kept to compare costs with; exact on the CPU back end too, but 2.5-3x slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Deterministic = bool | None | Literal["flash64"]


@dataclass(frozen=True)
class Layout:
    """How a model scores.

    Example:
        >>> resolve_layout(None, n_gpu_layers=0)
        Layout(exact=True, flash64=False, guaranteed=True)
        >>> resolve_layout(None, n_gpu_layers=-1).guaranteed
        False
        >>> resolve_layout("flash64", n_gpu_layers=0).name
        'flash64'
    """

    exact: bool  # the exact layout: flash attention off, cells placed in SIMD-width blocks
    flash64: bool  # the previous 64-cell flash-attention layout
    guaranteed: bool  # batch-invariant by construction on this back end: noise floor 0

    @property
    def deterministic(self) -> bool:
        """The engine runs a batch-invariant layout (whether or not it is guaranteed here)."""
        return self.exact or self.flash64

    @property
    def name(self) -> str:
        """``"exact"``, ``"flash64"`` or ``"fast"``, as benchmarks and the CLI name them."""
        return "exact" if self.exact else "flash64" if self.flash64 else "fast"


def resolve_layout(deterministic: Deterministic, n_gpu_layers: int) -> Layout:
    """The layout ``load_gguf`` gives a model (see the module docstring)."""
    on_cpu = int(n_gpu_layers) == 0
    if deterministic is None:
        deterministic = on_cpu
    if isinstance(deterministic, str):
        if deterministic != "flash64":
            raise ValueError(
                f"deterministic must be True, False, None or 'flash64', got {deterministic!r}"
            )
        return Layout(exact=False, flash64=True, guaranteed=on_cpu)
    if not isinstance(deterministic, bool):
        raise ValueError(
            f"deterministic must be True, False, None or 'flash64', got {deterministic!r}"
        )
    if deterministic:
        return Layout(exact=True, flash64=False, guaranteed=on_cpu)
    return Layout(exact=False, flash64=False, guaranteed=False)
