"""GGUF models on llama.cpp through pyllmattr's C++ scoring engine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_int
from .._native import _core
from .._text import check_text
from ..cancel import CancelToken
from .backend import Backend, GenerateCall, ScoreCall
from .exactness import Deterministic, Layout, resolve_layout
from .gguf_file import check_gguf_file
from .interface import ScoreStats, TokenIds
from .refs import resolve_model
from .requantize import requantized_copy
from .selfcheck_cache import ExactRulesSource, SelfCheckCache

# The engine's scoring strategies (csrc/schedule.h) by the names users give, weakest last.
_STRATEGIES = {s.label: s for s in _core.Strategy.__members__.values()}
_FLASH_ATTN: dict[Any, _core.FlashAttn] = {
    **_core.FlashAttn.__members__,
    None: _core.FlashAttn.auto,
    False: _core.FlashAttn.off,
    True: _core.FlashAttn.on,
}
# Leaves per wave. Measured on SmolLM2 Q4_1, 2 threads: leave-one-out over 106 tokens took
# 22.9 s with 8, 27.9 s with 16 and 32.4 s with 64 (same tokens decoded); 32 tokens: 2.71,
# 2.84, 2.88 s. The engine also caps a wave's KV cells (csrc/scorer.cpp, wave_cells; the
# exact layout: csrc/scorer_exact.cpp). The flash64 layout's waves restart from an empty
# cache, so they stay large (Layout.flash64: benchmarks only).
DEFAULT_BRANCHES = 8
FLASH64_BRANCHES = 64


class LlamaModel(Backend):
    """A GGUF model loaded with llama.cpp, ready to score many prompts at once.

    Create it with :func:`load_gguf`. One model holds one llama.cpp context:
    calls from several threads run one at a time (each waits for the previous;
    an attribution holds the model for all its calls), and the GIL is released
    while llama.cpp computes. ``close()`` waits for a running call, frees the
    context and the weights, and is harmless to repeat; using the model after it
    raises ValueError.

    Example:
        >>> import pyllmattr as pla
        >>> with pla.load_gguf(pla.default_model_path()) as model:  # doctest: +SKIP
        ...     prompt = model.tokenize("The capital of France is")
        ...     target = model.tokenize(" Paris", add_special=False)
        ...     model.score([prompt, prompt[:-1]], target).shape
        (2, 1)
    """

    def __init__(
        self,
        engine: Any,
        path: Path | None,
        owner: Any = None,
        selfcheck: SelfCheckCache | None = None,
    ) -> None:
        super().__init__()  # the attribution lock (the engine serializes single calls)
        self._engine = engine
        self.path = path
        self._layout = Layout.of_native(engine.options.layout)
        self._owner = owner  # keeps a borrowed llama_cpp.Llama alive
        # The exact layout's rules: from the self-check's disk cache, or from the check
        # the engine runs at its first exact call (models/selfcheck_cache.py).
        self._exact_source = ExactRulesSource(engine, selfcheck)

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Free the llama.cpp context (and the model, unless borrowed). Safe to call twice.

        Waits for a running attribution or call on another thread to finish first.
        """
        with self._attribution_lock:
            self._engine.close()
            self._owner = None

    @property
    def closed(self) -> bool:
        return bool(self._engine.closed)

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "llama_cpp.Llama"
        state = "closed" if self.closed else f"n_ctx={self.n_ctx}"
        return f"LlamaModel({where!r}, {state})"

    # ------------------------------------------------------------ properties
    @property
    def n_ctx(self) -> int:
        """KV cache cells: the longest prompt plus target, and the working space of the
        sequences scored together (as llama.cpp granted it, at least ``load_gguf``'s)."""
        return int(self._engine.n_ctx)

    @property
    def n_vocab(self) -> int:
        """Every token id the model can score is in [0, n_vocab)."""
        return int(self._engine.n_vocab)

    @property
    def n_ctx_train(self) -> int:
        """The context length the model was trained with (GGUF metadata)."""
        return int(self._engine.n_ctx_train)

    @property
    def description(self) -> str:
        """llama.cpp's one-line description: architecture, size and weight type."""
        return str(self._engine.description)

    @property
    def architecture(self) -> str:
        """The GGUF ``general.architecture`` (``"llama"``, ``"gemma3"``, ...)."""
        return str(self._engine.meta("general.architecture"))

    @property
    def bos_token_id(self) -> int | None:
        bos = self._engine.bos
        return bos if bos >= 0 else None

    @property
    def eos_token_id(self) -> int | None:
        eos = self._engine.eos
        return eos if eos >= 0 else None

    @property
    def deterministic(self) -> bool:
        """The engine scores with a batch-invariant layout (the exact one, the default on
        the CPU); :attr:`scores_are_exact` says whether that is guaranteed on this back end."""
        return self._layout.batch_invariant

    @property
    def layout(self) -> Layout:
        """The scoring layout ``load_gguf(deterministic=...)`` chose (models/exactness.py)."""
        return self._layout

    @property
    def exact_block(self) -> int | None:
        """Cells per block of the exact layout, checked on this model at first use (None
        without the exact layout). 16 on AVX-512 CPUs, 8 on AVX2; 64 when the check of the
        CPU's width failed and the wider blocks passed it."""
        if self._layout is not Layout.exact:
            return None
        block = self._engine.exact_block
        self._exact_source.settled()
        return block

    @property
    def exact_verified_by(self) -> str | None:
        """Where the exact layout's rules come from: ``"self-check"`` (run by this process
        at the first exact call; this property runs it when it has not run yet) or
        ``"cache"`` (the outcome of an earlier run on this machine and model, from the
        disk cache: models/selfcheck_cache.py, docs/numerics.md). None without the exact
        layout."""
        if self._layout is not Layout.exact:
            return None
        self.exact_block  # noqa: B018 (settles the rules: adopts them or runs the check)
        return self._exact_source.verified_by

    @property
    def exact_verified(self) -> bool | None:
        """Whether the exact layout's rules passed the self-check (on this run or the cached
        one). False: no rules passed, and exact calls score every sequence alone (still
        exact, without prefix sharing). None without the exact layout."""
        if self._layout is not Layout.exact:
            return None
        self.exact_block  # noqa: B018 (settles the rules)
        outcome = self._exact_source.outcome
        return outcome.verified if outcome is not None else None

    @property
    def n_gpu_layers(self) -> int:
        """Layers offloaded to a GPU back end (0: everything on the CPU; -1: all)."""
        return self._engine.options.n_gpu_layers

    @property
    def scores_are_exact(self) -> bool:
        """Whether a prompt's scores are guaranteed not to depend on what it is batched
        with: a batch-invariant layout on llama.cpp's CPU back end, the default there
        (:meth:`Layout.guaranteed`; elsewhere the noise floor is measured)."""
        return self._layout.guaranteed(self.n_gpu_layers, self._engine.n_swa)

    @property
    def sharing(self) -> str:
        """How ``share_prefix=True`` shares work on this model's memory type."""
        return self._engine.sharing_strategy.label

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value as a string, or None when the key is absent."""
        value = self._engine.meta(key)
        return value if value else None

    # ------------------------------------------------------------ chat
    @property
    def chat_template(self) -> str | None:
        """The chat template stored in the GGUF file (``tokenizer.chat_template``), or None."""
        return self._engine.chat_template or None

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, str]],
        add_assistant: bool = True,
        template: str | None = None,
    ) -> str:
        """Render a conversation with the model's chat template, as llama.cpp does.

        ``messages`` are ``{"role": ..., "content": ...}`` dicts; ``add_assistant``
        ends the text with the opening of the assistant's turn. llama.cpp recognizes
        the template's family (ChatML, Llama 3, Gemma, ...) from its text and formats
        with its built-in rules; it does not run the Jinja code, so a template's
        default system prompt is not added. ``template`` overrides the file's
        (a template text or a llama.cpp name such as ``"chatml"``).

        Example:
            >>> model.apply_chat_template([{"role": "user", "content": "Hi"}])  # doctest: +SKIP
            '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
        """
        pairs = []
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping) or not {"role", "content"} <= set(message):
                raise ValueError(
                    f"apply_chat_template: message {i} must be a dict with 'role' and 'content'"
                )
            role, content = message["role"], message["content"]
            if not isinstance(role, str) or not isinstance(content, str):
                raise ValueError(f"apply_chat_template: message {i}'s role and content must be str")
            pairs.append((role, content))
        raw = self._engine.apply_chat_template(pairs, bool(add_assistant), template or "")
        return raw.decode("utf-8", errors="replace")

    # ------------------------------------------------------------ vocabulary
    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of ``text``; ``add_special`` adds BOS/EOS as the model's metadata asks."""
        if not isinstance(text, str):
            raise ValueError(f"tokenize expects a str, got {type(text).__name__}")
        check_text(text, "tokenize: the text")
        return self._engine.tokenize(text, add_special, parse_special)

    def detokenize(
        self, ids: TokenIds, remove_special: bool = False, render_special: bool = True
    ) -> str:
        """Text of token ids (special tokens rendered unless ``render_special=False``)."""
        raw = self._engine.detokenize(
            self._token_list(ids, "detokenize"), remove_special, render_special
        )
        return raw.decode("utf-8", errors="replace")

    def token_to_str(self, token_id: int, render_special: bool = True) -> str:
        """The text piece of one token (may be a partial UTF-8 character, replaced by U+FFFD)."""
        piece = self._engine.token_piece(
            self._token_list([token_id], "token_to_str")[0], render_special
        )
        return piece.decode("utf-8", errors="replace")

    def token_to_bytes(self, token_id: int, render_special: bool = True) -> bytes:
        """The raw bytes of one token's text piece."""
        return self._engine.token_piece(
            self._token_list([token_id], "token_to_bytes")[0], render_special
        )

    # ------------------------------------------------------------ scoring
    def _score(self, call: ScoreCall, target: list[int]) -> tuple[np.ndarray, ScoreStats]:
        code = _strategy_code(call, "score")
        scores, stats = self._engine.score(
            call.sequences, target, code, call.progress, _flag(call.cancel)
        )
        self._exact_source.settled()
        return scores, _score_stats(stats)

    def _score_pairs(
        self, call: ScoreCall, targets: list[list[int]]
    ) -> tuple[list[np.ndarray], ScoreStats]:
        code = _strategy_code(call, "score_pairs")
        flat, offsets, stats = self._engine.score_pairs(
            call.sequences, targets, code, call.progress, _flag(call.cancel)
        )
        self._exact_source.settled()
        return np.split(flat, offsets[1:-1]), _score_stats(stats)

    def _generate(self, prompt: list[int], call: GenerateCall) -> list[int]:
        seed = call.seed if call.seed is not None else secrets.randbelow(2**32 - 1)
        options = _core.GenerateOptions(
            max_new_tokens=int(call.max_new_tokens),
            temperature=float(call.temperature),
            top_k=int(call.top_k),
            top_p=float(call.top_p),
            seed=int(seed),
            stop_at_eog=bool(call.stop_at_eos),
        )
        return list(self._engine.generate(prompt, options, call.progress, _flag(call.cancel)))


def _flag(cancel: CancelToken | None) -> Any:
    """The engine's side of a cancel token (None: the call cannot be cancelled)."""
    return cancel.flag if cancel is not None else None


def _score_stats(native: Any) -> ScoreStats:
    """The engine's stats (``_core.ScoreStats``) as the backend-neutral dataclass."""
    values = {f.name: getattr(native, f.name) for f in fields(ScoreStats)}
    return ScoreStats(**{**values, "strategy": native.strategy.label})


def _strategy_code(call: ScoreCall, caller: str) -> Any:
    """The engine's strategy for a call: ``strategy`` if given, else share_prefix's."""
    strategy = call.strategy
    if strategy is None:
        strategy = "trie" if call.share_prefix else "independent"
    if strategy not in _STRATEGIES:
        raise ValueError(f"{caller}: unknown strategy {strategy!r}; use one of {list(_STRATEGIES)}")
    return _STRATEGIES[strategy]


def _engine_options(
    n_ctx: int,
    n_threads: int | None,
    n_batch: int,
    n_outputs: int,
    max_branches: int,
    flash_attn: Any,
    kv_precision: str,
    layout: Layout,
) -> Any:
    check_int("n_ctx", n_ctx, least=8)
    check_int("n_batch", n_batch, least=1)
    check_int("n_outputs", n_outputs, least=1)
    check_int("max_branches", max_branches, least=1)
    if max_branches > 255:
        raise ValueError("max_branches must be <= 255 (llama.cpp's limit on sequences)")
    if flash_attn not in _FLASH_ATTN:
        raise ValueError(f"flash_attn must be 'auto', 'on' or 'off', got {flash_attn!r}")
    if kv_precision not in ("f16", "f32"):
        raise ValueError(f"kv_precision must be 'f16' or 'f32', got {kv_precision!r}")
    n_threads = check_int("n_threads", n_threads, least=1, none_ok=True) or os.cpu_count() or 1
    return _core.EngineOptions(
        n_ctx=int(n_ctx),
        n_batch=int(n_batch),
        n_outputs=int(n_outputs),
        max_branches=int(max_branches),
        n_threads=int(n_threads),
        flash_attn=_FLASH_ATTN[flash_attn],
        kv_f32=kv_precision == "f32",
        layout=layout.native,
    )


def load_gguf(
    path: str | os.PathLike | Any,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    *,
    n_batch: int = 512,
    n_outputs: int = 64,
    max_branches: int | None = None,
    flash_attn: str | bool | None = "auto",
    kv_precision: str = "f16",
    deterministic: Deterministic = None,
    requantize: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> LlamaModel:
    """Load a GGUF model for scoring and generation.

    ``path`` is a .gguf file, a model reference (``ollama:NAME[:TAG]``,
    ``lmstudio:PUBLISHER/MODEL[/FILE]``, ``hf:ORG/REPO[/FILE]``: see
    :func:`pyllmattr.resolve_model`), or an existing ``llama_cpp.Llama`` whose loaded
    weights are reused (no second copy in memory; ``n_gpu_layers`` then comes
    from that object). ``n_ctx`` is the number of KV cache cells: the longest
    prompt plus target, and the working space shared by sequences scored together.
    ``n_batch`` tokens go through each decode, at most ``n_outputs`` of them
    returning logits; at most ``max_branches`` sequences share one wave of the
    prefix trie (default 8: every token attends over all cells of its wave, so a
    wave also holds no more cells than its longest sequence or 256, and the shared
    prefix is kept between waves).
    ``deterministic`` chooses the scoring layout (``pyllmattr.models.exactness``):
    ``None`` (the default) is exact where that is guaranteed, on llama.cpp's CPU back
    end (``n_gpu_layers=0``): a sequence then scores bit for bit the same alone, in any
    slot of any batch and with prefix sharing, and attributions report
    ``noise_floor == 0``; with layers on a GPU it is the fast layout, whose noise floor
    every attribution measures. ``True`` forces the exact layout, ``False`` the fast
    one (costs and evidence: docs/numerics.md). The exact layout's rules are verified
    by a self-check (seconds) at the first exact call once per machine, model and
    options: its outcome is cached in pyllmattr's cache folder (``$PYLLMATTR_CACHE_DIR``;
    ``model.exact_verified_by`` says ``"self-check"`` or ``"cache"``).
    ``requantize="q8_0"`` (or ``"f16"``, ``"q4_0"``) loads a copy of the weights
    converted by llama.cpp's quantizer and cached in ``cache_dir`` (default
    ``$PYLLMATTR_CACHE_DIR``, or the platform's user cache folder, e.g.
    ~/.cache/pyllmattr); the file at ``path`` is never
    changed. On CPUs without fast kernels for the file's type (Q4_1, Q5_*) "f16"
    and "q8_0" run about twice as fast; "f16" also skips the 8-bit activations of
    Q4_1/Q8_0 kernels (it scores like float32 PyTorch on the same weights), "q8_0"
    takes half its memory (figures in BENCHMARKS.md). ``verbose=True``
    prints llama.cpp's log.

    Example:
        >>> import pyllmattr as pla
        >>> model = pla.load_gguf(pla.default_model_path(), n_ctx=2048)  # doctest: +SKIP
    """
    layout = resolve_layout(deterministic, _gpu_layers(path, n_gpu_layers))
    return load_with_layout(
        path,
        layout,
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        n_batch=n_batch,
        n_outputs=n_outputs,
        max_branches=max_branches,
        flash_attn=flash_attn,
        kv_precision=kv_precision,
        requantize=requantize,
        cache_dir=cache_dir,
        verbose=verbose,
    )


def load_with_layout(
    path: str | os.PathLike | Any,
    layout: Layout,
    *,
    n_ctx: int,
    n_threads: int | None,
    n_gpu_layers: int,
    n_batch: int,
    n_outputs: int,
    max_branches: int | None,
    flash_attn: str | bool | None,
    kv_precision: str,
    requantize: str | None,
    cache_dir: str | os.PathLike | None,
    verbose: bool,
) -> LlamaModel:
    """:func:`load_gguf` with the layout given instead of resolved from ``deterministic``
    (every argument is required: ``pyllmattr._bench.load_gguf_layout`` fills in
    load_gguf's defaults)."""
    _core.set_verbose(bool(verbose))
    gpu_layers = _gpu_layers(path, n_gpu_layers)
    if max_branches is None:
        max_branches = FLASH64_BRANCHES if layout is Layout.flash64 else DEFAULT_BRANCHES
    options = _engine_options(
        n_ctx,
        n_threads,
        n_batch,
        n_outputs,
        max_branches,
        flash_attn,
        kv_precision,
        layout,
    )
    if _is_llama_cpp_object(path):
        if requantize is not None:
            raise ValueError(
                "requantize needs the .gguf path; pass the file instead of a llama_cpp.Llama"
            )
        return _from_llama_cpp(path, options, layout)
    file = resolve_model(path)  # a path, or ollama:/lmstudio:/hf: (pyllmattr/models/refs.py)
    check_gguf_file(file)
    if requantize is not None:
        file = requantized_copy(file, requantize, cache_dir, options.n_threads)
    options.n_gpu_layers = gpu_layers
    engine = _core.Engine(str(file), options)
    selfcheck = SelfCheckCache.for_engine(file, engine) if layout is Layout.exact else None
    return LlamaModel(engine, file, selfcheck=selfcheck)


def _gpu_layers(path: Any, n_gpu_layers: Any) -> int:
    """Layers on a GPU: the argument, or the llama_cpp.Llama object's own setting."""
    if _is_llama_cpp_object(path):
        params = getattr(path, "model_params", None)
        return int(getattr(params, "n_gpu_layers", 0) or 0)
    return check_int("n_gpu_layers (-1: all)", n_gpu_layers)


def _is_llama_cpp_object(obj: Any) -> bool:
    return type(obj).__module__.startswith("llama_cpp") and hasattr(obj, "_model")


def _from_llama_cpp(llm: Any, options: Any, layout: Layout) -> LlamaModel:
    import ctypes

    from llama_cpp import llama_cpp as lib

    theirs = ctypes.cast(lib._lib.llama_model_n_params, ctypes.c_void_p).value
    if theirs != _core.llama_symbol_address():
        raise ValueError(
            "this llama_cpp.Llama uses a different libllama than pyllmattr was built against; "
            "reinstall pyllmattr against the installed llama-cpp-python "
            "(pip install --no-build-isolation --force-reinstall pyllmattr) or pass the .gguf path"
        )
    pointer = ctypes.cast(llm._model.model, ctypes.c_void_p).value
    if not pointer:
        raise ValueError("this llama_cpp.Llama has no loaded model (was it closed?)")
    # The weights' placement is the borrowed model's: report its GPU layers.
    options.n_gpu_layers = _gpu_layers(llm, 0)
    engine = _core.Engine.from_model_pointer(pointer, options)
    model_path = Path(llm.model_path) if getattr(llm, "model_path", None) else None
    selfcheck = None
    if layout is Layout.exact and model_path is not None:
        selfcheck = SelfCheckCache.for_engine(model_path, engine)
    return LlamaModel(engine, model_path, owner=llm, selfcheck=selfcheck)
