"""Token bytes and sampling for the PyTorch model (no torch import at module level)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import GenerateCall


class Vocabulary:
    """Exact byte pieces of tokens, which a tokenizer's ``decode`` cannot give for tokens
    that hold part of a UTF-8 character. Inputs map tokens to features by these bytes."""

    def __init__(self, tokenizer: Any, n_vocab: int) -> None:
        self.tokenizer = tokenizer
        self.n_vocab = n_vocab
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self.byte_level = decoder is not None and "ByteLevel" in repr(decoder)
        self.unicode_to_byte = {c: b for b, c in _byte_to_unicode().items()}
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self.special = {int(i) for i, tok in added.items() if getattr(tok, "special", False)}
        self.special.update(int(i) for i in getattr(tokenizer, "all_special_ids", []))
        self.cache: dict[int, bytes] = {}

    def piece(self, token: int, render_special: bool) -> bytes:
        if token in self.special and not render_special:
            return b""
        if token not in self.cache:
            self.cache[token] = self._bytes(token)
        return self.cache[token]

    def _bytes(self, token: int) -> bytes:
        text = self.tokenizer.convert_ids_to_tokens(token)
        if text is None:  # ids past the tokenizer's vocabulary (padded output layers)
            return b""
        if token in self.special:
            return text.encode("utf-8")
        if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            return bytes([int(text[3:5], 16)])  # SentencePiece byte fallback
        if self.byte_level:
            if all(c in self.unicode_to_byte for c in text):
                return bytes(self.unicode_to_byte[c] for c in text)
            return text.encode("utf-8")  # an added (non-byte-level) token
        return text.replace("\u2581", " ").encode("utf-8")  # SentencePiece word marker


def _byte_to_unicode() -> dict[int, str]:
    """The printable-character alphabet of byte-level BPE: printable Latin-1 bytes stand
    for themselves, every other byte for the code point 256 + its rank among them."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + rank) for rank, b in enumerate(others)})
    return table


class Sampler:
    """Greedy, or temperature / top-k / top-p sampling with a seeded generator."""

    def __init__(self, torch: Any, sampling: GenerateCall) -> None:
        self.torch = torch
        self.temperature = float(sampling.temperature)
        self.top_k, self.top_p = int(sampling.top_k), float(sampling.top_p)
        self.generator = torch.Generator()
        if sampling.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(sampling.seed))

    def pick(self, logits: Any) -> int:
        torch = self.torch
        if self.temperature == 0:
            return int(logits.argmax())
        logits = logits.cpu() / self.temperature
        if self.top_k:
            threshold = torch.topk(logits, min(self.top_k, len(logits))).values[-1]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self.top_p < 1:
            sorted_probs, order = probs.sort(descending=True)
            before = sorted_probs.cumsum(0) - sorted_probs  # mass of strictly better tokens
            sorted_probs[before >= self.top_p] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self.generator))
