"""The base both back ends share (``LlamaModel``, ``TorchModel``).

It owns what must behave the same on llama.cpp and PyTorch: the checks of
``score``, ``score_pairs`` and ``generate``'s arguments (one set of ValueErrors),
their return conventions (``return_stats``), the attribution lock and the
context-manager lifecycle. A back end implements the vocabulary, ``close`` and the
checked calls ``_score``, ``_score_pairs`` and ``_generate``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

import numpy as np

from ..cancel import CancelToken
from .interface import ProgressCallback, ScoreStats, TokenIds, token_list

B = TypeVar("B", bound="Backend")


@dataclass(frozen=True)
class ScoreCall:
    """A checked ``score`` or ``score_pairs`` call as a back end receives it: the
    sequences as token lists (at least one, none checked against the context yet) and
    the caller's options.

    Example:
        >>> ScoreCall([[1, 2, 3]], True, None, None, None).sequences
        [[1, 2, 3]]
    """

    sequences: list[list[int]]
    share_prefix: bool
    progress: ProgressCallback | None
    cancel: CancelToken | None
    strategy: str | None


@dataclass(frozen=True)
class GenerateCall:
    """A checked ``generate`` call as a back end receives it: at most
    ``max_new_tokens``, greedy at ``temperature=0``, else temperature, top-k (0: off)
    and top-p (1: off) sampling seeded with ``seed`` (None: a random seed);
    ``stop_at_eos`` stops before an end-of-generation token.

    Example:
        >>> GenerateCall(5, temperature=-1.0)
        Traceback (most recent call last):
        ValueError: generate: need temperature >= 0, top_k >= 0 and 0 < top_p <= 1
    """

    max_new_tokens: int
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop_at_eos: bool = True
    progress: ProgressCallback | None = None
    cancel: CancelToken | None = None

    def __post_init__(self) -> None:
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"generate: max_new_tokens must be >= 0, got {n!r}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("generate: need temperature >= 0, top_k >= 0 and 0 < top_p <= 1")
        if self.seed is not None and not 0 <= int(self.seed) < 2**32:
            raise ValueError("generate: seed must be in [0, 2**32)")


class Backend(ABC):
    """The base of the back ends: checked ``score``, ``score_pairs`` and ``generate``
    on top of the back end's own ``_score``, ``_score_pairs`` and ``_generate``.

    Example:
        >>> with pla.load_gguf(pla.default_model_path()) as model:  # doctest: +SKIP
        ...     isinstance(model, Backend)
        True
    """

    def __init__(self) -> None:
        # Held by an attribution for all its calls, so that attributions from several
        # threads run one after the other (and another thread's calls do not interleave).
        self._attribution_lock = threading.RLock()

    # ------------------------------------------------------------ lifecycle
    @abstractmethod
    def close(self) -> None:
        """Free what the model holds; safe to call twice."""

    @property
    def attribution_lock(self) -> threading.RLock:
        """Held by an attribution for all its calls (and by llama.cpp models' ``close()``):
        hold it to run several calls of your own together, between other threads'
        attributions."""
        return self._attribution_lock

    def __enter__(self: B) -> B:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the back end's part
    @property
    @abstractmethod
    def n_vocab(self) -> int:
        """Every token id the model can score is in [0, n_vocab)."""

    @abstractmethod
    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of ``text``; ``add_special`` adds BOS/EOS as the model is configured."""

    @abstractmethod
    def _score(self, call: ScoreCall, target: list[int]) -> tuple[np.ndarray, ScoreStats]:
        """:meth:`score`: one non-empty ``target`` after every sequence of ``call``."""

    @abstractmethod
    def _score_pairs(
        self, call: ScoreCall, targets: list[list[int]]
    ) -> tuple[list[np.ndarray], ScoreStats]:
        """:meth:`score_pairs`: one non-empty target per sequence of ``call``."""

    @abstractmethod
    def _generate(self, prompt: list[int], call: GenerateCall) -> list[int]:
        """:meth:`generate` of a checked, non-empty prompt."""

    # ------------------------------------------------------------ scoring
    @overload
    def score(
        self,
        sequences: Sequence[TokenIds] | np.ndarray,
        target: TokenIds | str,
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: Literal[False] = False,
        strategy: str | None = None,
    ) -> np.ndarray: ...

    @overload
    def score(
        self,
        sequences: Sequence[TokenIds] | np.ndarray,
        target: TokenIds | str,
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: Literal[True],
        strategy: str | None = None,
    ) -> tuple[np.ndarray, ScoreStats]: ...

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
        ``[i, t]`` is ``log p(target[t] | sequences[i] + target[:t])``; a text target is
        tokenized without special tokens.

        All sequences are scored in one call: on llama.cpp shared prefixes are decoded
        once and many sequences go through each decode (``share_prefix=False`` decodes
        every sequence on its own from an empty cache; ``strategy``, one of "trie",
        "trie-per-wave", "independent", overrides it); PyTorch pads sequences into
        batches and shares nothing. ``progress(done, total)`` is called after every
        decode or batch with token counts; returning False cancels, as does
        ``cancel.cancel()`` from another thread (both raise :class:`pyllmattr.Cancelled`).
        ``return_stats=True`` also returns a :class:`ScoreStats`.

        Example:
            >>> prompt = model.tokenize("The capital of France is")  # doctest: +SKIP
            >>> model.score([prompt, prompt[:-1]], " Paris").shape  # doctest: +SKIP
            (2, 1)
        """
        seqs = [self._token_list(s, f"score: sequence {i}") for i, s in enumerate(sequences)]
        target_ids = self._target_list(target)
        if not seqs:
            raise ValueError("score: no sequences given; pass at least one token sequence")
        call = ScoreCall(seqs, share_prefix, progress, cancel, strategy)
        scores, stats = self._score(call, target_ids)
        return (scores, stats) if return_stats else scores

    @overload
    def score_pairs(
        self,
        sequences: Sequence[TokenIds],
        targets: Sequence[TokenIds | str],
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: Literal[False] = False,
        strategy: str | None = None,
    ) -> list[np.ndarray]: ...

    @overload
    def score_pairs(
        self,
        sequences: Sequence[TokenIds],
        targets: Sequence[TokenIds | str],
        share_prefix: bool = True,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        return_stats: Literal[True],
        strategy: str | None = None,
    ) -> tuple[list[np.ndarray], ScoreStats]: ...

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
        tokens). Equals one :meth:`score` call per pair, made in one call: identical
        pairs are scored once, and on llama.cpp the prefix trie spans prompt + target,
        so a prompt that appears with several targets is decoded once. Options as in
        :meth:`score`; ``stats`` count over all pairs.

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
        target_ids = [self._pair_target(t, i) for i, t in enumerate(targets)]
        call = ScoreCall(seqs, share_prefix, progress, cancel, strategy)
        scores, stats = self._score_pairs(call, target_ids)
        return (scores, stats) if return_stats else scores

    # ------------------------------------------------------------ generation
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
        """Continue ``prompt_ids``; greedy unless ``temperature > 0``. Returns the new ids
        only; stops before an end-of-generation token (not included) when ``stop_at_eos``.

        Example:
            >>> prompt = model.tokenize("The capital of France is")  # doctest: +SKIP
            >>> model.detokenize(model.generate(prompt, 3))  # doctest: +SKIP
        """
        prompt = self._token_list(prompt_ids, "generate: prompt")
        if not prompt:
            raise ValueError("generate: the prompt is empty")
        call = GenerateCall(
            max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, progress, cancel
        )
        return self._generate(prompt, call)

    # ------------------------------------------------------------ checks
    def _target_list(self, target: TokenIds | str) -> list[int]:
        """The token ids of ``score``'s target (text is tokenized without special tokens)."""
        if isinstance(target, str):
            ids = self.tokenize(target, add_special=False)
            if not ids:
                raise ValueError(f"score: the target {target!r} tokenizes to nothing")
            return ids
        ids = self._token_list(target, "score: target")
        if not ids:
            raise ValueError("score: the target is empty; give at least one token")
        return ids

    def _pair_target(self, target: Any, i: int) -> list[int]:
        """The token ids of pair ``i``'s target, or a ValueError naming the pair."""
        what = f"score_pairs: the target of pair {i}"
        if isinstance(target, str):
            ids = self.tokenize(target, add_special=False)
        else:
            ids = self._token_list(target, what)
        if not ids:
            raise ValueError(f"{what} is empty (or tokenizes to nothing); give at least one token")
        return ids

    def _token_list(self, ids: Any, what: str) -> list[int]:
        return token_list(ids, self.n_vocab, what)


def check_pairs(sequences: Sequence[Any], targets: Sequence[Any]) -> None:
    """score_pairs' shape check: one target per sequence, at least one pair."""
    if isinstance(targets, (str, bytes)):
        raise ValueError(
            "score_pairs: targets must be a list with one target per sequence; "
            "for one target after every sequence use model.score(sequences, target)"
        )
    if len(sequences) != len(targets):
        raise ValueError(
            f"score_pairs: {len(sequences)} sequences but {len(targets)} targets; "
            "give one target per sequence"
        )
    if not len(sequences):
        raise ValueError("score_pairs: no pairs given; pass at least one (sequence, target)")
