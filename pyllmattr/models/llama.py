"""GGUF models on llama.cpp through pyllmattr's C++ scoring engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_int
from .._native import _core
from .._text import check_text
from ..cancel import CancelToken
from .exactness import Deterministic, Layout, resolve_layout
from .gguf_file import check_gguf_file
from .interface import (
    ProgressCallback,
    ScoreStats,
    TokenIds,
    check_pairs,
    pair_target,
    token_list,
)
from .refs import resolve_model
from .requantize import requantized_copy
from .selfcheck_cache import ExactRulesSource, SelfCheckCache

# The engine's scoring strategies (csrc/schedule.h) by the names users give, weakest last.
_STRATEGIES = {s.label: s for s in _core.Strategy.__members__.values()}
_FLASH_ATTN = {
    **_core.FlashAttn.__members__,
    None: _core.FlashAttn.auto,
    False: _core.FlashAttn.off,
    True: _core.FlashAttn.on,
}
# Leaves per wave. Measured on SmolLM2 Q4_1, 2 threads: leave-one-out over 106 tokens took
# 22.9 s with 8, 27.9 s with 16 and 32.4 s with 64 (same tokens decoded); 32 tokens: 2.71,
# 2.84, 2.88 s. The engine also caps a wave's KV cells (csrc/scorer.cpp, wave_cells; the
# exact layout: csrc/scorer_exact.cpp). The flash64 layout's waves restart from an empty
# cache, so they stay large.
DEFAULT_BRANCHES = 8
FLASH64_BRANCHES = 64


class LlamaModel:
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
        layout: Layout | None = None,
        selfcheck: SelfCheckCache | None = None,
    ) -> None:
        self._engine = engine
        self.path = path
        options = engine.options
        self._layout = layout or Layout(
            exact=options.deterministic and not options.flash64,
            flash64=options.deterministic and options.flash64,
            guaranteed=options.deterministic and options.n_gpu_layers == 0,
        )
        self._owner = owner  # keeps a borrowed llama_cpp.Llama alive
        # The exact layout's rules: from the self-check's disk cache, or from the check
        # the engine runs at its first exact call (models/selfcheck_cache.py).
        self._exact_source = ExactRulesSource(engine, selfcheck)
        # Held by an attribution for all its calls, so that attributions from several
        # threads run one after the other (the engine already serializes single calls).
        self._attribution_lock = threading.RLock()

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
        return self._engine.closed

    @property
    def attribution_lock(self) -> threading.RLock:
        """Held by an attribution for all its engine calls (and by ``close()``): hold it
        to run several calls of your own together, between other threads' attributions."""
        return self._attribution_lock

    def __enter__(self) -> LlamaModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "llama_cpp.Llama"
        state = "closed" if self.closed else f"n_ctx={self.n_ctx}"
        return f"LlamaModel({where!r}, {state})"

    # ------------------------------------------------------------ properties
    @property
    def n_ctx(self) -> int:
        return self._engine.n_ctx

    @property
    def n_vocab(self) -> int:
        return self._engine.n_vocab

    @property
    def n_ctx_train(self) -> int:
        return self._engine.n_ctx_train

    @property
    def description(self) -> str:
        return self._engine.description

    @property
    def architecture(self) -> str:
        return self._engine.meta("general.architecture")

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
        the CPU, or ``"flash64"``); :attr:`scores_are_exact` says whether that is
        guaranteed on this back end."""
        return self._layout.deterministic

    @property
    def layout(self) -> Layout:
        """The scoring layout ``load_gguf(deterministic=...)`` chose (models/exactness.py)."""
        return self._layout

    @property
    def exact_block(self) -> int | None:
        """Cells per block of the exact layout, checked on this model at first use (None
        without the exact layout). 16 on AVX-512 CPUs, 8 on AVX2; 64 when the check of the
        CPU's width failed and the wider blocks passed it."""
        if not self._layout.exact:
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
        if not self._layout.exact:
            return None
        self.exact_block  # noqa: B018 (settles the rules: adopts them or runs the check)
        return self._exact_source.verified_by

    @property
    def exact_verified(self) -> bool | None:
        """Whether the exact layout's rules passed the self-check (on this run or the cached
        one). False: no rules passed, and exact calls score every sequence alone (still
        exact, without prefix sharing). None without the exact layout."""
        if not self._layout.exact:
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
        with: a batch-invariant layout on llama.cpp's CPU back end, the default there (GPU
        kernels are not covered, so there the noise floor is measured; the flash64 layout is
        not exact on sliding-window models)."""
        if self.n_gpu_layers != 0:
            return False
        return self._layout.exact or (self._layout.flash64 and self._engine.n_swa == 0)

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
    def score(
        self,
        sequences: Sequence[TokenIds] | np.ndarray,
        target: TokenIds | str,
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: bool = False,
        strategy: str | None = None,
    ) -> np.ndarray | tuple[np.ndarray, ScoreStats]:
        """Log-probability of every target token after every sequence.

        Returns an array of shape ``(len(sequences), len(target))`` whose entry
        ``[i, t]`` is ``log p(target[t] | sequences[i] + target[:t])``.

        All sequences are scored in one call: shared prefixes are decoded once
        and many sequences go through each llama.cpp decode. ``share_prefix=False``
        decodes every sequence on its own from an empty cache (the baseline).
        ``progress(done, total)`` is called after every decode with token counts;
        returning False cancels, as does ``cancel.cancel()`` from another thread
        (both raise :class:`pyllmattr.Cancelled`). ``return_stats=True`` also
        returns a :class:`ScoreStats`. ``strategy`` ("trie", "trie-per-wave",
        "independent") overrides ``share_prefix``; the engine never shares more
        than the model's memory type allows.
        """
        seqs = [self._token_list(s, f"score: sequence {i}") for i, s in enumerate(sequences)]
        target_ids = self._target_list(target)
        scores, stats = self._engine.score(
            seqs,
            target_ids,
            _strategy_code(strategy, share_prefix, "score"),
            progress,
            cancel._flag if cancel is not None else None,
        )
        self._exact_source.settled()
        return (scores, _score_stats(stats)) if return_stats else scores

    def score_pairs(
        self,
        sequences: Sequence[TokenIds],
        targets: Sequence[TokenIds | str],
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: bool = False,
        strategy: str | None = None,
    ) -> list[np.ndarray] | tuple[list[np.ndarray], ScoreStats]:
        """Score every sequence with its own target: one array per (sequence, target) pair.

        Entry ``[t]`` of array ``i`` is ``log p(targets[i][t] | sequences[i] +
        targets[i][:t])``; a target is token ids or text (tokenized without special
        tokens). Equals one :meth:`score` call per pair, made in one engine call: the
        prefix trie spans prompt + target, so identical pairs are scored once, a prompt
        that appears with several targets is decoded once, and so are prefixes shared
        across pairs. Options as in :meth:`score`; ``stats`` count over all pairs.

        Example:
            >>> prompt = model.tokenize("The capital of France is")  # doctest: +SKIP
            >>> pairs = model.score_pairs([prompt, prompt], [" Paris", " Lyon"])  # doctest: +SKIP
            >>> pairs[0].shape  # doctest: +SKIP
            (1,)
        """
        check_pairs(sequences, targets)
        seqs = [
            self._token_list(s, f"score_pairs: the sequence of pair {i}")
            for i, s in enumerate(sequences)
        ]
        target_ids = [pair_target(self, t, i) for i, t in enumerate(targets)]
        flat, offsets, stats = self._engine.score_pairs(
            seqs,
            target_ids,
            _strategy_code(strategy, share_prefix, "score_pairs"),
            progress,
            cancel._flag if cancel is not None else None,
        )
        self._exact_source.settled()
        scores = np.split(flat, offsets[1:-1])
        return (scores, _score_stats(stats)) if return_stats else scores

    def generate(
        self,
        prompt_ids: TokenIds,
        max_new_tokens: int = 25,
        *,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop_at_eos: bool = True,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[int]:
        """Continue ``prompt_ids``; greedy unless ``temperature > 0``. Returns the new ids only."""
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32 - 1))
        if not 0 <= int(seed) < 2**32:
            raise ValueError("generate: seed must be in [0, 2**32)")
        options = _core.GenerateOptions(
            max_new_tokens=int(max_new_tokens),
            temperature=float(temperature),
            top_k=int(top_k),
            top_p=float(top_p),
            seed=int(seed),
            stop_at_eog=bool(stop_at_eos),
        )
        return self._engine.generate(
            self._token_list(prompt_ids, "generate: prompt"),
            options,
            progress,
            cancel._flag if cancel is not None else None,
        )

    # ------------------------------------------------------------ helpers
    def _target_list(self, target: TokenIds | str) -> list[int]:
        if isinstance(target, str):
            ids = self.tokenize(target, add_special=False)
            if not ids:
                raise ValueError(f"score: the target {target!r} tokenizes to nothing")
            return ids
        return self._token_list(target, "score: target")

    def _token_list(self, ids: Any, what: str) -> list[int]:
        return token_list(ids, self.n_vocab, what)


def _score_stats(native: Any) -> ScoreStats:
    """The engine's stats (``_core.ScoreStats``) as the backend-neutral dataclass."""
    values = {f.name: getattr(native, f.name) for f in fields(ScoreStats)}
    return ScoreStats(**{**values, "strategy": native.strategy.label})


def _strategy_code(strategy: str | None, share_prefix: bool, caller: str) -> Any:
    if strategy is None:
        strategy = "trie" if share_prefix else "independent"
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
        deterministic=layout.deterministic,
        flash64=layout.flash64,
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
    prefix is kept between waves; 64 with ``deterministic="flash64"``, whose waves
    each start from an empty cache).
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
    _core.set_verbose(bool(verbose))
    gpu_layers = _gpu_layers(path, n_gpu_layers)
    layout = resolve_layout(deterministic, gpu_layers)
    if max_branches is None:
        max_branches = FLASH64_BRANCHES if layout.flash64 else DEFAULT_BRANCHES
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
    selfcheck = SelfCheckCache.for_engine(file, engine) if layout.exact else None
    return LlamaModel(engine, file, layout=layout, selfcheck=selfcheck)


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
    selfcheck = (
        SelfCheckCache.for_engine(model_path, engine) if layout.exact and model_path else None
    )
    return LlamaModel(engine, model_path, owner=llm, layout=layout, selfcheck=selfcheck)
