"""Types of pyllmattr's compiled engine (csrc/bindings.cpp), for type checkers and editors.

Private: the package wraps it (``pyllmattr._native`` loads it). Keep this file in step
with bindings.cpp: tests/test_native_boundary.py compares its names and parameters with
the built module's.
"""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

# Called as progress(done, total) with the GIL held; a falsy return (not None) cancels.
_ProgressCallback = Callable[[int, int], bool | None] | None

class Cancelled(RuntimeError):
    """A call stopped by its CancelFlag, its progress callback or Ctrl-C."""

class CancelFlag:
    """A flag the engine polls between graph nodes; set() cancels the running call."""

    def __init__(self) -> None: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...

class _Enum:
    """What every pybind11 enum of the module has."""

    def __init__(self, value: int) -> None: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class Strategy(_Enum):
    """How a scoring call may reuse the KV cache (csrc/schedule.h)."""

    __members__: ClassVar[dict[str, Strategy]]
    trie: ClassVar[Strategy]
    trie_per_wave: ClassVar[Strategy]
    independent: ClassVar[Strategy]
    @property
    def label(self) -> str:
        """The name users see: 'trie', 'trie-per-wave', 'independent'."""

class Layout(_Enum):
    """How scoring lays sequences out (csrc/engine.h; pyllmattr.models.exactness.Layout)."""

    __members__: ClassVar[dict[str, Layout]]
    fast: ClassVar[Layout]
    exact: ClassVar[Layout]
    flash64: ClassVar[Layout]

class FlashAttn(_Enum):
    """llama.cpp's flash attention choice."""

    __members__: ClassVar[dict[str, FlashAttn]]
    auto: ClassVar[FlashAttn]
    off: ClassVar[FlashAttn]
    on: ClassVar[FlashAttn]

class FileType(_Enum):
    """Weight types a GGUF copy can be converted to (llama_ftype)."""

    __members__: ClassVar[dict[str, FileType]]
    f16: ClassVar[FileType]
    q4_0: ClassVar[FileType]
    q8_0: ClassVar[FileType]
    q4_k_m: ClassVar[FileType]

class EngineOptions:
    """How an Engine is set up (csrc/engine.h)."""

    n_ctx: int
    n_batch: int
    n_outputs: int
    max_branches: int
    n_threads: int
    n_gpu_layers: int
    flash_attn: FlashAttn
    kv_f32: bool
    layout: Layout
    def __init__(
        self,
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_outputs: int = 64,
        max_branches: int = 8,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
        flash_attn: FlashAttn = ...,
        kv_f32: bool = False,
        layout: Layout = ...,
    ) -> None: ...

class ScoreStats:
    """What one scoring call decoded (pyllmattr.ScoreStats converts it); not constructible."""

    @property
    def n_decoded(self) -> int: ...
    @property
    def n_trie(self) -> int: ...
    @property
    def n_naive(self) -> int: ...
    @property
    def n_decode_calls(self) -> int: ...
    @property
    def n_waves(self) -> int: ...
    @property
    def n_padding(self) -> int: ...
    @property
    def n_unique(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def strategy(self) -> Strategy: ...

class GenerateOptions:
    """How Engine.generate samples."""

    def __init__(
        self,
        *,
        max_new_tokens: int = 25,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0xFFFFFFFF,
        stop_at_eog: bool = True,
    ) -> None: ...

class Engine:
    """One llama.cpp model and context; one call at a time, the GIL released in each."""

    def __init__(self, path: str, options: EngineOptions) -> None: ...
    @staticmethod
    def from_model_pointer(pointer: int, options: EngineOptions) -> Engine: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def options(self) -> EngineOptions:
        """The options in effect (after llama.cpp's limits)."""
    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]: ...
    def detokenize(
        self, tokens: Sequence[int], remove_special: bool, unparse_special: bool
    ) -> bytes: ...
    def token_piece(self, token: int, special: bool) -> bytes: ...
    def score(
        self,
        sequences: Sequence[Sequence[int]],
        target: Sequence[int],
        strategy: Strategy,
        progress: _ProgressCallback,
        cancel: CancelFlag | None,
    ) -> tuple[npt.NDArray[np.float64], ScoreStats]:
        """(log-probs (n, len(target)), stats)."""
    def score_pairs(
        self,
        sequences: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]],
        strategy: Strategy,
        progress: _ProgressCallback,
        cancel: CancelFlag | None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], ScoreStats]:
        """(flat log-probs, offsets, stats): pair i's are flat[offsets[i]:offsets[i + 1]]."""
    def generate(
        self,
        prompt: Sequence[int],
        options: GenerateOptions,
        progress: _ProgressCallback,
        cancel: CancelFlag | None,
    ) -> list[int]: ...
    def meta(self, key: str) -> str:
        """A GGUF metadata value as text ("" when absent)."""
    @property
    def chat_template(self) -> str: ...
    def apply_chat_template(
        self, messages: Sequence[tuple[str, str]], add_assistant: bool, template: str
    ) -> bytes: ...
    def is_eog(self, token: int) -> bool: ...
    @property
    def sharing_strategy(self) -> Strategy: ...
    @property
    def description(self) -> str: ...
    @property
    def n_vocab(self) -> int: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def n_ctx_train(self) -> int: ...
    @property
    def n_swa(self) -> int: ...
    @property
    def is_recurrent(self) -> bool: ...
    @property
    def bos(self) -> int: ...
    @property
    def eos(self) -> int: ...
    @property
    def add_bos(self) -> bool: ...
    @property
    def exact_verified(self) -> bool:
        """The exact layout's rules were checked on this model (runs the self-check once)."""
    @property
    def exact_block(self) -> int: ...
    @property
    def exact_outcome(self) -> tuple[bool, int, int, int, float] | None:
        """The self-check's outcome without running it: None until settled, else
        (verified, block, row_mult, row_min, seconds the check took in this process)."""
    def adopt_exact_rules(self, block: int, row_mult: int, row_min: int, verified: bool) -> bool:
        """Use a cached outcome of the self-check instead of running it (False: refused)."""

class _Testing(Protocol):
    """``_core.testing``: test-only hooks into the engine (pyllmattr._testing wraps them)."""

    def set_plan_slack(self, engine: Engine, cells: int) -> None: ...
    def plan_stats(
        self,
        sequences: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int]],
        strategy: Strategy,
        max_cells: int,
        max_slots: int,
    ) -> dict[str, int]: ...
    def exact_self_check(self, engine: Engine, block: int, row_mult: int, row_min: int) -> bool: ...

testing: _Testing

def quantize_model(input: str, output: str, type: FileType, n_threads: int) -> None: ...
def set_verbose(verbose: bool) -> None: ...
def llama_symbol_address() -> int: ...
def system_info() -> dict[str, Any]:
    """llama.cpp's system info line, ggml's version and commit, back ends and devices."""

EXACT_RULES_VERSION: int
