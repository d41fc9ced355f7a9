"""Explicit, cached weight conversion of a GGUF file with llama.cpp's own quantizer.

Some quantization types have no fast CPU matrix kernel (SmolLM2's shipped Q4_1 runs at
about half the speed of Q8_0 here), so attributing with a Q8_0 copy of the same weights
can be much faster at a small, measurable cost in fidelity (BENCHMARKS.md). The user's
file is never modified: the copy goes to a cache folder, keyed by the source file's
path, size and modification time, and is reused on later calls.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .._native import _core
from .cache_dir import user_cache_dir
from .gguf_file import check_gguf_file

# Conversion targets by name (the engine's FileType, csrc/quantize.h). Q8_0 and F16 are
# near-lossless for a Q4/Q5 source; Q4_0 trades fidelity for the fastest CPU kernel; Q4_K_M
# is the K-quant mix most GGUFs ship in (tensors whose rows are not a multiple of 256 fall
# back to another type).
REQUANTIZE_TYPES: dict[str, Any] = dict(_core.FileType.__members__)


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted models go: ``cache_dir``, else pyllmattr's cache folder
    (``$PYLLMATTR_CACHE_DIR``, or the platform's: models/cache_dir.py)."""
    if cache_dir is not None:
        return Path(os.fspath(cache_dir)).expanduser()
    return user_cache_dir()


def requantized_copy(
    path: str | os.PathLike,
    to: str = "q8_0",
    cache_dir: str | os.PathLike | None = None,
    n_threads: int | None = None,
) -> Path:
    """Path of a copy of the GGUF at ``path`` with its weights converted to ``to``.

    The first call converts (seconds for a small model) and caches the result; later
    calls with an unchanged source file return the cached copy. ``load_gguf(path,
    requantize="q8_0")`` does this for you.

    Example:
        >>> import pyllmattr as pla
        >>> fast = pla.requantized_copy(pla.default_model_path(), "q8_0")  # doctest: +SKIP
        >>> model = pla.load_gguf(fast)  # doctest: +SKIP
    """
    key = to.lower() if isinstance(to, str) else to
    if key not in REQUANTIZE_TYPES:
        raise ValueError(
            f"requantize: unknown type {to!r}; choose one of {', '.join(REQUANTIZE_TYPES)}"
        )
    source = Path(os.fspath(path)).expanduser().resolve()
    check_gguf_file(source)
    folder = cache_folder(cache_dir)
    target = folder / f"{source.stem}.{_source_key(source)}.{key.upper()}.gguf"
    if target.exists():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"requantize: cannot create the cache folder {folder} ({e}); pass cache_dir= "
            "or set PYLLMATTR_CACHE_DIR to a writable folder"
        ) from None
    _convert(source, target, REQUANTIZE_TYPES[key], n_threads or os.cpu_count() or 1)
    return target


def _source_key(source: Path) -> str:
    """Changes whenever the source file is replaced or rewritten."""
    st = source.stat()
    return hashlib.sha256(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _convert(source: Path, target: Path, ftype: Any, n_threads: int) -> None:
    # Write to a temporary file and rename, so that concurrent or interrupted
    # conversions never leave a half-written model under the cached name.
    fd, partial = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        _core.quantize_model(str(source), partial, ftype, int(n_threads))
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
