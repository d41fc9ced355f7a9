"""What a GGUF file holds, read from its header without loading the weights.

The GGUF header is a flat list of typed key/value pairs followed by one record per
tensor (name, shape, type, offset): a few dozen lines of ``struct`` parsing over a
memory map read it. The ``gguf`` package reads it too, but it is not a runtime
dependency of pyllmattr, and it also builds numpy views of every field (the
tokenizer's 50k-entry string arrays included); here arrays are skipped, so listing
models touches a few hundred kilobytes of each file.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# llama.cpp's llama_ftype (general.file_type) and ggml_type (a tensor's type), by number.
# tests/unit/test_gguf_header.py checks both against the gguf package's enums.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE",
}  # fmt: skip
TENSOR_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}  # fmt: skip

# GGUF value types 0..12: struct codes of the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = dict(enumerate("BbHhIif?")) | {10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFInfo:
    """A GGUF file's model description, from its header alone.

    ``metadata`` holds the scalar and string keys (arrays such as the vocabulary are
    skipped; ``array_lengths`` gives their lengths). ``quantization`` is the file
    type llama.cpp wrote (``general.file_type``), else the type of most weights.

    Example:
        >>> info = read_gguf_info(pla.default_model_path())  # doctest: +SKIP
        >>> info.architecture, info.quantization, info.context_length  # doctest: +SKIP
        ('llama', 'Q4_1', 8192)
    """

    path: Path
    version: int
    size_bytes: int
    n_params: int
    n_tensors: int
    metadata: dict[str, Any] = field(repr=False)
    array_lengths: dict[str, int] = field(repr=False)
    quantization: str
    # Where the tensor data starts: the header's end, padded to ``general.alignment``.
    data_offset: int = field(default=0, repr=False)

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.metadata.get("general.name")

    @property
    def context_length(self) -> int | None:
        return self.metadata.get(f"{self.architecture}.context_length")

    @property
    def n_vocab(self) -> int | None:
        return self.array_lengths.get("tokenizer.ggml.tokens")

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")


def read_gguf_info(path: str | os.PathLike) -> GGUFInfo:
    """Read a GGUF file's header: architecture, parameters, quantization, context length.

    Raises ValueError for a missing file, a file that is not GGUF, or a truncated header.

    Example:
        >>> read_gguf_info("model.gguf").n_params  # doctest: +SKIP
        134515008
    """
    file = Path(path)
    try:
        with open(file, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ValueError(f"{file} is not a GGUF file (it does not start with b'GGUF')")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _parse(file, view)
    except OSError as exc:
        raise ValueError(f"cannot read {file}: {exc.strerror or exc}") from exc
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is truncated or corrupt (its GGUF header ends early)") from exc


class _Cursor:
    """Reads little- (or big-) endian GGUF values from a buffer, front to back."""

    def __init__(self, data: Any, order: str) -> None:
        self.data, self.order, self.at = data, order, 0

    def scalar(self, code: str) -> Any:
        (value,) = struct.unpack_from(self.order + code, self.data, self.at)
        self.at += struct.calcsize(code)
        return value

    def string(self) -> str:
        n = self.scalar("Q")
        raw = self.data[self.at : self.at + n]
        if len(raw) != n:
            raise IndexError("string past the end of the file")
        self.at += n
        return raw.decode("utf-8")

    def skip_string(self) -> None:
        n = self.scalar("Q")  # read first: `self.at += self.scalar(...)` would lose its 8 bytes
        self.at += n

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        raise ValueError(f"unknown GGUF value type {kind}")

    def skip_array(self) -> int:
        kind, count = self.scalar("I"), self.scalar("Q")
        if kind == _STRING:
            for _ in range(count):
                self.skip_string()
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array()
        elif kind in _SCALARS:
            self.at += count * struct.calcsize(_SCALARS[kind])
        else:
            raise ValueError(f"unknown GGUF array type {kind}")
        return count


def _parse(file: Path, data: Any) -> GGUFInfo:
    order = "<"
    (version,) = struct.unpack_from("<I", data, 4)
    if version > 0xFFFF:  # a big-endian file (its version reads byte-swapped)
        order = ">"
        (version,) = struct.unpack_from(">I", data, 4)
    if version < 2:
        raise ValueError(f"{file} is a GGUF version {version} file; llama.cpp reads 2 and 3 only")
    cur = _Cursor(data, order)
    cur.at = 8
    n_tensors, n_kv = cur.scalar("Q"), cur.scalar("Q")
    metadata: dict[str, Any] = {}
    arrays: dict[str, int] = {}
    for _ in range(n_kv):
        key, kind = cur.string(), cur.scalar("I")
        if kind == _ARRAY:
            arrays[key] = cur.skip_array()
        else:
            metadata[key] = cur.value(kind)
    n_params, weight_types = 0, Counter[int]()
    for _ in range(n_tensors):
        cur.skip_string()
        n_dims = cur.scalar("I")
        count = 1
        for _ in range(n_dims):
            count *= cur.scalar("Q")
        kind = cur.scalar("I")
        cur.scalar("Q")  # the tensor's offset in the data section
        n_params += count
        if n_dims >= 2:
            weight_types[kind] += count
    return GGUFInfo(
        path=file,
        version=version,
        size_bytes=file.stat().st_size,
        n_params=n_params,
        n_tensors=n_tensors,
        metadata=metadata,
        array_lengths=arrays,
        quantization=_quantization(metadata.get("general.file_type"), weight_types),
        data_offset=_aligned(cur.at, metadata.get("general.alignment", 32)),
    )


def _aligned(offset: int, alignment: Any) -> int:
    step = alignment if isinstance(alignment, int) and alignment > 0 else 32
    return -(-offset // step) * step


def _quantization(file_type: Any, weight_types: Counter[int]) -> str:
    if isinstance(file_type, int) and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    if weight_types:
        kind = weight_types.most_common(1)[0][0]
        return TENSOR_TYPES.get(kind, f"type {kind}")
    return "unknown"


def format_params(n: int) -> str:
    """A parameter count as people write it: 135M, 1.5B."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{unit}" if value >= 100 else f"{value:.3g}{unit}"
    return str(n)


def format_size(n: int) -> str:
    """A file size in binary units: 98.0 MiB, 4.1 GiB."""
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"
