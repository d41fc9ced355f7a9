"""Hugging Face causal language models on PyTorch, behind the interface of ``LlamaModel``.

torch and transformers are imported only when a model is loaded, so ``import pyllmattr``
and the llama.cpp path work without them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from .._extras import require
from ..cancel import Cancelled, CancelToken
from .backend import Backend, GenerateCall, ScoreCall
from .interface import ProgressCallback, ScoreStats, TokenIds, trie_size
from .torch_vocab import Sampler, Vocabulary

INSTALL_HINT = 'pip install "pyllmattr[torch]"'
# Padded tokens per forward in ``score``: bounds the attention masks and hidden states
# of one batch; logits are only computed at target positions.
DEFAULT_BATCH_TOKENS = 4096


def require_torch() -> Any:
    """Import torch and transformers, or explain which extra installs them."""
    torch, _ = require(("torch", "transformers"), "the PyTorch path", INSTALL_HINT)
    return torch


class TorchModel(Backend):
    """A Hugging Face causal LM with the same interface as :class:`LlamaModel`.

    ``tokenize``, ``detokenize``, ``token_to_str``, ``token_to_bytes``, ``score``
    and ``generate`` behave as on llama.cpp models, so every perturbation method
    runs on it unchanged; the gradient methods (``IntegratedGradients``,
    ``GradientShap``, ``Saliency``, ``InputXGradient``) need it. ``.model`` and
    ``.tokenizer`` are the Hugging Face objects; everything runs on the model's device.

    ``score`` pads sequences of similar lengths into batches of at most
    ``max_batch_tokens`` tokens (left padding with an attention mask and explicit
    position ids) and computes logits only at target positions. Unlike llama.cpp,
    it shares no prefixes (``share_prefix`` is accepted and has no effect).

    Example:
        >>> import pyllmattr as pla
        >>> model = pla.load_torch_gguf(pla.default_model_path())  # doctest: +SKIP
        >>> ids = model.tokenize("The capital of France is")  # doctest: +SKIP
        >>> model.score([ids], " Paris").shape  # doctest: +SKIP
        (1, 1)
    """

    deterministic = False  # batch shapes change float rounding (about 1e-6)
    scores_are_exact = False
    sharing = "none"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        n_ctx: int | None = None,
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
        path: Path | None = None,
    ) -> None:
        torch = require_torch()
        if not isinstance(model, torch.nn.Module) or model.get_input_embeddings() is None:
            raise ValueError(
                "load_torch expects a Hugging Face causal LM (e.g. AutoModelForCausalLM), "
                f"got {type(model).__name__}"
            )
        if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
            raise ValueError(
                "load_torch expects the model's Hugging Face tokenizer (AutoTokenizer), "
                f"got {type(tokenizer).__name__}"
            )
        check_positive_int("max_batch_tokens", max_batch_tokens)
        super().__init__()  # the attribution lock: another thread's gradients must not
        # interleave with an attribution's forwards and backwards
        model.eval()  # attributions need deterministic forwards (no dropout)
        self.model = model
        self.tokenizer = tokenizer
        self.path = path
        self.max_batch_tokens = int(max_batch_tokens)
        self._n_ctx = n_ctx
        self._vocab = Vocabulary(tokenizer, self.n_vocab)
        self._torch = torch

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Nothing to free explicitly (PyTorch frees the weights with the object)."""

    def __repr__(self) -> str:
        name = str(self.path) if self.path else type(self.model).__name__
        return f"TorchModel({name!r}, device={self.device}, dtype={self.dtype})"

    # ------------------------------------------------------------ properties
    @property
    def device(self) -> Any:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> Any:
        return self.model.get_input_embeddings().weight.dtype

    @property
    def n_vocab(self) -> int:
        """Rows of the output layer: every id the model can score."""
        head = self.model.get_output_embeddings()
        weight = head.weight if head is not None else self.model.get_input_embeddings().weight
        return int(weight.shape[0])

    @property
    def n_ctx(self) -> int:
        if self._n_ctx is not None:
            return int(self._n_ctx)
        return int(getattr(self.model.config, "max_position_embeddings", 0) or 2**31 - 1)

    @property
    def bos_token_id(self) -> int | None:
        return self.tokenizer.bos_token_id

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.eos_token_id

    @property
    def stop_token_ids(self) -> set[int]:
        """Tokens that end generation: the tokenizer's EOS and the generation config's."""
        ids = {self.eos_token_id}
        config = getattr(self.model, "generation_config", None)
        extra = getattr(config, "eos_token_id", None)
        ids.update(extra if isinstance(extra, (list, tuple)) else [extra])
        return {int(i) for i in ids if i is not None}

    # ------------------------------------------------------------ vocabulary
    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of ``text``; ``add_special`` adds BOS/EOS as the tokenizer is configured."""
        if not isinstance(text, str):
            raise ValueError(f"tokenize expects a str, got {type(text).__name__}")
        encoded = self.tokenizer(
            text, add_special_tokens=add_special, split_special_tokens=not parse_special
        )
        return list(encoded["input_ids"])

    def detokenize(
        self, ids: TokenIds, remove_special: bool = False, render_special: bool = True
    ) -> str:
        """Text of token ids: their byte pieces joined, then decoded as UTF-8."""
        ids = self._token_list(ids, "detokenize")
        if remove_special:
            if ids and ids[0] == self.bos_token_id:
                ids = ids[1:]
            if ids and ids[-1] == self.eos_token_id:
                ids = ids[:-1]
        raw = b"".join(self._vocab.piece(t, render_special) for t in ids)
        return raw.decode("utf-8", errors="replace")

    def token_to_str(self, token_id: int, render_special: bool = True) -> str:
        """The text piece of one token (a partial UTF-8 character becomes U+FFFD)."""
        return self.token_to_bytes(token_id, render_special).decode("utf-8", errors="replace")

    def token_to_bytes(self, token_id: int, render_special: bool = True) -> bytes:
        """The raw bytes of one token's text piece (empty for special tokens unless rendered)."""
        token = self._token_list([token_id], "token_to_bytes")[0]
        return self._vocab.piece(token, render_special)

    # ------------------------------------------------------------ embeddings
    def embed(self, ids: TokenIds) -> Any:
        """Input embeddings of token ids, shape (len(ids), hidden size), without gradient."""
        torch = self._torch
        ids = self._token_list(ids, "embed")
        with torch.no_grad():
            tensor = torch.tensor(ids, dtype=torch.long, device=self.device)
            return self.model.get_input_embeddings()(tensor)

    def target_logprobs(self, prompt_embeds: Any, target_ids: Sequence[int]) -> Any:
        """Differentiable log p(target[t] | prompt, target[:t]) for a batch of prompt embeddings.

        ``prompt_embeds`` has shape (batch, prompt length, hidden size); the target is
        teacher-forced after it in the same forward. Returns shape (batch, len(target)).
        """
        torch = self._torch
        batch = prompt_embeds.shape[0]
        target = torch.tensor(list(target_ids), dtype=torch.long, device=prompt_embeds.device)
        n_target = len(target)
        if n_target > 1:
            forced = self.embed(target_ids[:-1]).to(prompt_embeds.dtype)
            embeds = torch.cat([prompt_embeds, forced.expand(batch, -1, -1)], dim=1)
        else:
            embeds = prompt_embeds
        out = self.model(inputs_embeds=embeds, use_cache=False, **self._keep(n_target))
        logits = out.logits[:, -n_target:].float()
        picked = logits.gather(-1, target.expand(batch, -1)[..., None])[..., 0]
        # Gathering before logsumexp keeps no (batch, n_target, vocab) log-softmax alive.
        return picked - torch.logsumexp(logits, dim=-1)

    # ------------------------------------------------------------ scoring
    # share_prefix and strategy change nothing here: no prefix is shared.
    def _score(self, call: ScoreCall, target: list[int]) -> tuple[np.ndarray, ScoreStats]:
        rows, stats = self._score_rows(call, [target] * len(call.sequences), False)
        return np.stack(rows), stats

    def _score_pairs(
        self, call: ScoreCall, targets: list[list[int]]
    ) -> tuple[list[np.ndarray], ScoreStats]:
        return self._score_rows(call, targets, True)

    def _score_rows(
        self, call: ScoreCall, targets: list[list[int]], named_pairs: bool
    ) -> tuple[list[np.ndarray], ScoreStats]:
        """Every (sequence, target) pair's log-probs: identical pairs once, the rest in
        padded batches; ``named_pairs`` words errors as score_pairs' (else score's)."""
        started = time.perf_counter()
        self._check_lengths(call.sequences, targets, named_pairs)
        pairs = list(zip(map(tuple, call.sequences), map(tuple, targets), strict=True))
        unique = list(dict.fromkeys(pairs))
        scores, counts = self._score_unique(unique, call.progress, call.cancel)
        row_of = {pair: row for row, pair in enumerate(unique)}
        rows = [scores[row_of[pair]] for pair in pairs]
        stats = ScoreStats(
            n_decoded=counts["real"],
            n_trie=trie_size(p + t for p, t in unique),
            n_naive=sum(len(p) + len(t) for p, t in pairs),
            n_decode_calls=counts["batches"],
            n_waves=counts["batches"],
            n_padding=counts["padding"],
            n_unique=len(unique),
            seconds=time.perf_counter() - started,
            strategy="padded-batch",
        )
        return rows, stats

    def _check_lengths(
        self, seqs: list[list[int]], targets: list[list[int]], named_pairs: bool
    ) -> None:
        for i, (seq, target) in enumerate(zip(seqs, targets, strict=True)):
            name = f"score_pairs: pair {i}" if named_pairs else f"score: sequence {i}"
            if not seq:
                raise ValueError(f"{name} is empty; give at least one token")
            if len(seq) + len(target) > self.n_ctx:
                whose, its = ("'s sequence", "its") if named_pairs else ("", "the")
                raise ValueError(
                    f"{name}{whose} ({len(seq)} tokens) plus {its} target ({len(target)}) "
                    f"exceeds the model's context of {self.n_ctx} tokens"
                )

    def _score_unique(
        self,
        unique: list[tuple[tuple[int, ...], tuple[int, ...]]],
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> tuple[list[np.ndarray], dict[str, int]]:
        lengths = [len(p) + len(t) for p, t in unique]
        order = sorted(range(len(unique)), key=lambda i: -lengths[i])
        scores: list[np.ndarray] = [np.empty(0)] * len(unique)
        total = sum(lengths)
        counts = {"real": 0, "padding": 0, "batches": 0}
        for chunk in _length_chunks(order, lengths, self.max_batch_tokens):
            _check_cancel(cancel)
            rows, padding = self._forward_pairs([unique[i] for i in chunk])
            for i, row in zip(chunk, rows, strict=True):
                scores[i] = row
            counts["batches"] += 1
            counts["real"] += sum(lengths[i] for i in chunk)
            counts["padding"] += padding
            if progress is not None and progress(counts["real"], total) is False:
                raise Cancelled("score was cancelled by the progress callback")
        return scores, counts

    def _forward_pairs(
        self, pairs: list[tuple[tuple[int, ...], tuple[int, ...]]]
    ) -> tuple[list[np.ndarray], int]:
        """Log-probs of each pair's target in one padded forward, and the padding it took."""
        torch = self._torch
        rows = [list(p) + list(t[:-1]) for p, t in pairs]
        width = max(len(r) for r in rows)
        keep = max(len(t) for _, t in pairs)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        # Left padding: every row ends at the last column, so each row's target is read
        # from its last len(target) positions (shorter targets are left-padded too).
        targets = torch.zeros((len(rows), keep), dtype=torch.long)
        for r, (row, (_, target)) in enumerate(zip(rows, pairs, strict=True)):
            ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, width - len(row) :] = 1
            targets[r, keep - len(target) :] = torch.tensor(target)
        ids, mask, targets = ids.to(self.device), mask.to(self.device), targets.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                **self._keep(keep),
            )
            logits = out.logits[:, -keep:].float()
            picked = logits.gather(-1, targets[..., None])[..., 0]
            # Gathering before logsumexp keeps no (batch, keep, vocab) log-softmax alive.
            logprobs = picked - torch.logsumexp(logits, dim=-1)
            logprobs = logprobs.cpu().double().numpy()  # MPS has no float64
        scored = [logprobs[r, keep - len(t) :] for r, (_, t) in enumerate(pairs)]
        if not all(np.all(np.isfinite(s)) for s in scored):
            raise RuntimeError("the model produced NaN/inf logits while scoring")
        return scored, sum(width - len(r) for r in rows)

    # ------------------------------------------------------------ generation
    def _generate(self, prompt: list[int], call: GenerateCall) -> list[int]:
        torch = self._torch
        sampler = Sampler(torch, call)
        stops = self.stop_token_ids if call.stop_at_eos else set()
        max_new_tokens, progress, cancel = call.max_new_tokens, call.progress, call.cancel
        generated: list[int] = []
        with torch.inference_mode():
            ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
            out = self.model(input_ids=ids, use_cache=True, **self._keep(1))
            while len(generated) < max_new_tokens and len(prompt) + len(generated) < self.n_ctx:
                _check_cancel(cancel)
                token = sampler.pick(out.logits[0, -1].float())
                if token in stops:
                    break
                generated.append(token)
                if progress is not None and progress(len(generated), max_new_tokens) is False:
                    raise Cancelled("generate was cancelled by the progress callback")
                if len(generated) == max_new_tokens:
                    break
                step = torch.tensor([[token]], dtype=torch.long, device=self.device)
                out = self.model(
                    input_ids=step, past_key_values=out.past_key_values, use_cache=True
                )
        return generated

    # ------------------------------------------------------------ helpers
    @property
    def _pad_id(self) -> int:
        for token in (self.tokenizer.pad_token_id, self.eos_token_id, 0):
            if token is not None:
                return int(token)
        return 0

    def _keep(self, n: int) -> dict[str, int]:
        """Ask for logits at the last n positions only, when the model supports it."""
        if getattr(self, "_keeps_logits", None) is None:
            import inspect

            params = inspect.signature(self.model.forward).parameters
            self._keeps_logits = next(
                (k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), ""
            )
        return {self._keeps_logits: n} if self._keeps_logits else {}


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")


def _length_chunks(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive rows (longest first) whose padded size stays within ``budget`` tokens."""
    chunks: list[list[int]] = []
    for i in order:
        # rows come longest first: a chunk's first row sets its padded width
        if chunks and (len(chunks[-1]) + 1) * lengths[chunks[-1][0]] <= budget:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks
