"""What hierarchical ablation saves over sentence leave-one-out, in evaluations and tokens.

No model runs: for every case of examples/data/context_qa.jsonl the prompts of
prefix-shared sentence LOO and of HierarchicalAblation(levels=("document",
"sentence"), keep=2) are built with SmolLM2's tokenizer (chat template), and the
tokens a prefix-sharing scorer must decode are counted (the distinct prefixes of
prompt + answer, which the engine decodes: its n_decoded tracks this count). The
hierarchical cost depends on which two documents are refined: the two first (worst),
the answer's document and its successor (typical), and the two last (best).

    python bench context_costs
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from harness import REPO

import pyllmattr as pla
from pyllmattr import chat

DATA = REPO / "examples" / "data" / "context_qa.jsonl"
TEMPLATE = "Context: {context}\n\nQuery: {query}"


def trie(sequences: list[list[int]]) -> int:
    """Distinct prefixes over all sequences (the answer is common to all, added once each)."""
    seen: set[tuple[int, ...]] = set()
    for seq in sequences:
        for end in range(1, len(seq) + 1):
            seen.add(tuple(seq[:end]))
    return len(seen)


def costs(model: pla.LlamaModel, spec: dict) -> dict:
    inp = pla.ContextInput(spec["documents"], spec["question"], template=TEMPLATE)
    encoding = chat.encode(inp, model, {})
    answer = model.tokenize(spec["answer"], add_special=False)
    doc_of = inp.parent_index("sentence", "document")
    n, d = len(doc_of), len(spec["documents"])

    def prompts(removals: list[np.ndarray]) -> list[list[int]]:
        out = [encoding.reference_ids + answer]
        for removed in removals:
            present = np.ones(n, dtype=bool)
            present[removed] = False
            out.append(encoding.render(present, None) + answer)
        return out

    loo = trie(prompts([np.array([s]) for s in range(n)]))
    level1 = trie(prompts([np.flatnonzero(doc_of == k) for k in range(d)]))

    def refine(kept: list[int]) -> tuple[int, int]:
        sentences = np.flatnonzero(np.isin(doc_of, kept))
        return level1 + trie(prompts([np.array([s]) for s in sentences])), len(sentences)

    answer_doc = spec["support_document"]
    choices = {
        "worst": [0, 1],
        "typical": [answer_doc, (answer_doc + 1) % d],
        "best": [d - 2, d - 1],
    }
    out = {"id": spec["id"], "documents": d, "sentences": n, "loo_tokens": loo}
    for name, kept in choices.items():
        tokens, refined = refine(kept)
        out[f"{name}_tokens"] = tokens
        out[f"{name}_evals"] = (1 + d) + (1 + refined)
    out["loo_evals"] = 1 + n
    out["bound"] = n / (d + 2 * n / d)  # P*S/(P + keep*S) with S = n / d
    return out


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    model = pla.load_gguf(pla.default_model_path(), n_ctx=4096)
    rows = [costs(model, json.loads(line)) for line in DATA.read_text().splitlines()]
    header = ["case", "docs", "sentences", "eval ratio (typical)", "P·S/(P+2S)"]
    header.append("token ratio worst / typical / best")
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ratios = [r["loo_tokens"] / r[f"{k}_tokens"] for k in ("worst", "typical", "best")]
        print(
            f"| {r['id']} | {r['documents']} | {r['sentences']} | "
            f"{r['loo_evals'] / r['typical_evals']:.2f} | {r['bound']:.2f} | "
            + " / ".join(f"{x:.2f}" for x in ratios)
            + " |"
        )
    mean = {
        k: np.mean([r["loo_tokens"] / r[f"{k}_tokens"] for r in rows])
        for k in ("worst", "typical", "best")
    }
    bound = np.mean([r["bound"] for r in rows])
    print(
        f"\nmean token ratio: worst {mean['worst']:.2f}, typical {mean['typical']:.2f}, "
        f"best {mean['best']:.2f}; mean P·S/(P+2S) {bound:.2f}"
    )


if __name__ == "__main__":
    main()
