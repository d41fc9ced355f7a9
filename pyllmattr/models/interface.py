"""What a model is to pyllmattr's methods: the interfaces both back ends implement.

Methods depend on these protocols, never on a back end's module: a scoring model
(llama.cpp or PyTorch) tokenizes, scores (prompt, target) pairs and generates; a
gradient model (PyTorch) also embeds tokens and gives differentiable target
log-probabilities. ``ScoreStats`` and the token-id check are shared by both; the
code both back ends share is their base class, :class:`pyllmattr.models.backend.Backend`.

Example:
    >>> import pyllmattr as pla
    >>> model = pla.load_gguf(pla.default_model_path())  # doctest: +SKIP
    >>> isinstance(model, pla.ScoringModel)  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

import numpy as np

from ..cancel import CancelToken

if TYPE_CHECKING:
    import torch

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

    ``score`` and ``score_pairs`` take ``progress(done, total)`` (returning False
    cancels), a :class:`~pyllmattr.CancelToken`, and ``return_stats=True`` to also
    return the call's :class:`ScoreStats`; the pipeline relies on all three.

    Example:
        >>> isinstance(pla.load_gguf(path), pla.ScoringModel)  # doctest: +SKIP
        True
    """

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def deterministic(self) -> bool: ...

    @property
    def scores_are_exact(self) -> bool:
        """True only where scores cannot depend on batch layout (then no noise floor is
        measured)."""
        ...

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
    ) -> list[int]: ...


@runtime_checkable
class GradientModel(ScoringModel, Protocol):
    """A scoring model with gradients (``pla.load_torch``, ``pla.load_torch_gguf``): the
    PyTorch ``model`` itself (hooked by ``layer=``), where its weights live, embeddings
    and differentiable target log-probabilities.

    Example:
        >>> isinstance(pla.load_torch_gguf(path), pla.GradientModel)  # doctest: +SKIP
        True
    """

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def embed(self, ids: TokenIds) -> torch.Tensor: ...

    def target_logprobs(
        self, prompt_embeds: torch.Tensor, target_ids: Sequence[int]
    ) -> torch.Tensor: ...


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


def trie_size(sequences: Iterable[Sequence[int]]) -> int:
    """Distinct non-empty prefixes of ``sequences``: the nodes of their prefix trie.

    Sorted, the distinct sequences walk the trie depth first, so each adds its length
    minus its common prefix with the one before (one pass over the sorted sequences,
    not a set of every prefix).

    Example:
        >>> trie_size([[1, 2, 3], [1, 2, 4], [1, 2, 3]])
        4
    """
    total = 0
    previous: tuple[int, ...] = ()
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
