"""What a model is to pyllmattr's methods: the interfaces both back ends implement.

Methods depend on these protocols, never on a back end's module: a scoring model
(llama.cpp or PyTorch) tokenizes, scores (prompt, target) pairs and generates; a
gradient model (PyTorch) also embeds tokens and gives differentiable target
log-probabilities. ``ScoreStats`` and the token-id check are shared by both.

Example:
    >>> import pyllmattr as pla
    >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
    >>> isinstance(model, pla.ScoringModel)  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

ProgressCallback = Callable[[int, int], "bool | None"]
TokenIds = Sequence[int]


@dataclass(frozen=True)
class ScoreStats:
    """What one ``score`` or ``score_pairs`` call decoded, on any back end.

    ``n_decoded`` tokens went through the model; ``n_trie`` is the number of
    distinct prefixes of prompt + target (the least any prefix-sharing scorer
    must decode) and ``n_naive`` what scoring every pair on its own decodes.
    ``n_padding`` counts rows decoded only for layout (llama.cpp's deterministic
    padding, PyTorch's padded batches).

    Example:
        >>> scores, stats = model.score(seqs, target, return_stats=True)  # doctest: +SKIP
        >>> stats.n_decoded <= stats.n_naive  # doctest: +SKIP
        True
    """

    n_decoded: int
    n_trie: int
    n_naive: int
    n_decode_calls: int
    n_waves: int
    n_padding: int
    n_unique: int
    seconds: float
    strategy: str


@runtime_checkable
class ScoringModel(Protocol):
    """A model every perturbation method runs on (``pla.load_gguf``, ``pla.load_torch``).

    Example:
        >>> isinstance(pla.load_gguf(path), pla.ScoringModel)  # doctest: +SKIP
        True
    """

    n_ctx: int
    n_vocab: int
    deterministic: bool
    # True only where scores cannot depend on batch layout (then no noise floor is measured).
    scores_are_exact: bool

    @property
    def bos_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int | None: ...

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = False
    ) -> list[int]: ...

    def detokenize(
        self, ids: TokenIds, remove_special: bool = False, render_special: bool = True
    ) -> str: ...

    def token_to_str(self, token_id: int, render_special: bool = True) -> str: ...

    def token_to_bytes(self, token_id: int, render_special: bool = True) -> bytes: ...

    def score(
        self,
        sequences: Sequence[TokenIds],
        target: TokenIds | str,
        share_prefix: bool = True,
        **kwargs: Any,
    ) -> Any: ...

    def score_pairs(
        self,
        sequences: Sequence[TokenIds],
        targets: Sequence[TokenIds | str],
        share_prefix: bool = True,
        **kwargs: Any,
    ) -> Any: ...

    def generate(
        self, prompt_ids: TokenIds, max_new_tokens: int = 25, **kwargs: Any
    ) -> list[int]: ...


@runtime_checkable
class GradientModel(ScoringModel, Protocol):
    """A scoring model with gradients (``pla.load_torch``, ``pla.load_torch_gguf``).

    Example:
        >>> isinstance(pla.load_torch_gguf(path), pla.GradientModel)  # doctest: +SKIP
        True
    """

    def embed(self, ids: TokenIds) -> Any: ...

    def target_logprobs(self, prompt_embeds: Any, target_ids: Sequence[int]) -> Any: ...


def token_list(ids: Any, n_vocab: int, what: str) -> list[int]:
    """``ids`` (a sequence, array or tensor of token ids) as a list of ints in [0, n_vocab),
    or a ValueError saying what is wrong with it (``what`` names the argument)."""
    if isinstance(ids, (str, bytes)):
        raise ValueError(f"{what}: expected token ids, got text; use model.tokenize() first")
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy()
    try:
        arr = np.asarray(ids)
    except ValueError as exc:
        raise ValueError(f"{what}: expected a flat list of token ids") from exc
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected a flat list of integer token ids")
    if arr.size and (arr.min() < 0 or arr.max() >= n_vocab):
        bad = int(arr[(arr < 0) | (arr >= n_vocab)][0])
        raise ValueError(
            f"{what}: token id {bad} is outside this model's vocabulary [0, {n_vocab})"
        )
    return arr.astype(np.int64).tolist()


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


def pair_target(model: ScoringModel, target: Any, i: int) -> list[int]:
    """The token ids of pair ``i``'s target (text is tokenized without special tokens),
    or a ValueError naming the pair."""
    what = f"score_pairs: the target of pair {i}"
    if isinstance(target, str):
        ids = model.tokenize(target, add_special=False)
    else:
        ids = token_list(target, model.n_vocab, what)
    if not ids:
        raise ValueError(f"{what} is empty (or tokenizes to nothing); give at least one token")
    return ids


def trie_size(sequences: Iterable[Sequence[int]]) -> int:
    """Distinct non-empty prefixes of ``sequences``: the nodes of their prefix trie.

    Sorted, the distinct sequences walk the trie depth first, so each adds its length
    minus its common prefix with the one before (one pass over the sorted sequences,
    not a set of every prefix).

    Example:
        >>> trie_size([[1, 2, 3], [1, 2, 4], [1, 2, 3]])
        4
    """
    total, previous = 0, ()
    for seq in sorted({tuple(s) for s in sequences}):
        total += len(seq) - common_prefix(previous, seq)
        previous = seq
    return total


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
