"""How much llama.cpp's batch layout moves pyllmattr's scores, in each scoring layout.

The layouts: the fast one (deterministic=False), the exact one (the default on the CPU)
and the previous 64-cell one (flash64, kept for benchmarks). Writes a markdown report
(docs/numerics.md quotes it).

    python bench numerics --out /tmp/numerics.md
"""

from __future__ import annotations

import argparse
import ctypes
import platform
import tempfile
import time
from pathlib import Path

import llama_cpp
import numpy as np

import pyllmattr as pla
from pyllmattr._bench import load_gguf_layout

PROMPTS = [
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing golf on "
    "weekends, reading history books, and cooking Italian food for his",
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is "
    "named after the engineer Gustave Eiffel, whose company designed and built the",
    "In 1969, Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while "
    "Michael Collins stayed in orbit aboard the command module named",
]
QUANTS = {
    "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "F16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
}
LAYOUTS = ("fast", "exact", "flash64")  # pyllmattr._bench.load_gguf_layout's names


def quantize(source: Path, ftype: int, folder: Path, name: str) -> Path:
    path = folder / f"smollm2-{name}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = ftype, True
    if (
        llama_cpp.llama_model_quantize(
            str(source).encode(), str(path).encode(), ctypes.byref(params)
        )
        != 0
    ):
        raise RuntimeError(f"quantizing to {name} failed")
    return path


def slot_spread(path: Path, layout: str) -> float:
    """Largest |log p| change of one sequence between alone and three slots of a mixed batch."""
    with load_gguf_layout(path, layout, n_ctx=2048, n_threads=2) as model:
        ids = model.tokenize(PROMPTS[0])
        target = model.generate(ids, max_new_tokens=6)
        others = [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), 3)]
        alone = model.score([ids], target, share_prefix=False)[0]
        spread = 0.0
        for slot in (0, 3, len(others)):
            batch = others[:slot] + [ids] + others[slot:]
            spread = max(spread, float(np.abs(model.score(batch, target)[slot] - alone).max()))
        return spread


def leave_one_out(path: Path, text: str, layout: str) -> dict:
    with load_gguf_layout(path, layout, n_ctx=4096, n_threads=2) as model:
        ids = model.tokenize(text)
        target = model.generate(ids, max_new_tokens=8)
        sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
        start = time.perf_counter()
        shared, stats = model.score(sequences, target, return_stats=True)
        shared_s = time.perf_counter() - start
        start = time.perf_counter()
        alone = model.score(sequences, target, share_prefix=False)
        alone_s = time.perf_counter() - start
    totals_shared, totals_alone = shared.sum(1), alone.sum(1)
    attr_shared = totals_shared[0] - totals_shared[1:]
    attr_alone = totals_alone[0] - totals_alone[1:]
    return {
        "tokens": len(ids),
        "max_token_diff": float(np.abs(shared - alone).max()),
        "max_total_diff": float(np.abs(totals_shared - totals_alone).max()),
        "pearson": float(np.corrcoef(attr_shared, attr_alone)[0, 1]),
        "shared_s": shared_s,
        "alone_s": alone_s,
        "decoded": stats.n_decoded,
        "padding": stats.n_padding,
        "trie": stats.n_trie,
        "naive": stats.n_naive,
    }


def loo_row(r: dict, layout: str) -> str:
    cells = [
        r["tokens"],
        layout,
        f"{r['max_token_diff']:.3g}",
        f"{r['max_total_diff']:.3g}",
        f"{r['pearson']:.4f}",
        f"{r['shared_s']:.2f}",
        f"{r['alone_s']:.2f}",
        f"{r['decoded']} ({r['padding']}) / {r['trie']} / {r['naive']}",
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="numerics.md")
    args = parser.parse_args()
    source = pla.default_model_path()
    machine = platform.processor() or platform.machine()
    lines = [f"# Batch-layout noise ({time.strftime('%Y-%m-%d')}, {machine}, 2 threads)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        models = {"Q4_1": source}
        models.update({name: quantize(source, ft, Path(tmp), name) for name, ft in QUANTS.items()})
        lines += [
            "## One sequence alone vs in 3 slots of a mixed batch (max abs Δ log p per token)",
            "",
            "| weights | " + " | ".join(LAYOUTS) + " |",
            "|---|" + "---|" * len(LAYOUTS),
        ]
        for name, path in models.items():
            spreads = [slot_spread(path, layout) for layout in LAYOUTS]
            lines.append(f"| {name} | " + " | ".join(f"{x:.4g}" for x in spreads) + " |")
    long_text = " ".join(PROMPTS[:2]) + " tower. " + PROMPTS[2]
    lines += [
        "",
        "## Leave-one-out, prefix-shared vs each sequence alone (Q4_1, 8-token target)",
        "",
        "| prompt tokens | mode | max abs Δ per token | max abs Δ per target | Pearson "
        "| shared s | alone s | decoded (padding) / trie / naive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for text in PROMPTS + [long_text]:
        for layout in LAYOUTS:
            lines.append(loo_row(leave_one_out(source, text, layout), layout))
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
