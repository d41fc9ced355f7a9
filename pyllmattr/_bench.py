"""Switches for the benchmarks (bench/) only; not part of pyllmattr's API.

The engine keeps 0.1's batch-invariant layout, ``Layout.flash64`` (flash attention,
64-cell tiles; 2.5-3x slower than the exact layout), so that benchmarks can compare
costs with it; ``load_gguf``'s ``deterministic=`` chooses only between the exact and
the fast layout.

Example:
    >>> from pyllmattr._bench import load_gguf_layout
    >>> model = load_gguf_layout(path, "flash64", n_threads=2)  # doctest: +SKIP
    >>> model.layout.name  # doctest: +SKIP
    'flash64'
"""

from __future__ import annotations

import inspect
from typing import Any

from .models.exactness import Layout
from .models.llama import LlamaModel, load_gguf, load_with_layout


def load_gguf_layout(path: Any, layout: Layout | str, **options: Any) -> LlamaModel:
    """``load_gguf(path, **options)`` in the named layout (``"fast"``, ``"exact"`` or
    ``"flash64"``) instead of the one ``deterministic=`` would choose."""
    if "deterministic" in options:
        raise ValueError("load_gguf_layout names the layout itself; drop deterministic=")
    arguments = inspect.signature(load_gguf).bind(path, **options)
    arguments.apply_defaults()  # load_gguf's defaults, written once
    settings = dict(arguments.arguments)
    del settings["deterministic"]
    return load_with_layout(layout=Layout(layout), **settings)
