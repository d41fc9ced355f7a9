"""How hierarchical ablation's fidelity and cost grow with ``keep``, from one measured run.

On an exact model a refined sentence's value is its leave-one-out value bit for bit
(bench/results/context-set.jsonl: every refined value of ``hierarchical-k2`` equals
``pla-loo``'s). So ``keep=k`` can be simulated from the keep=2 run and the reference:
the k strongest documents (the two keep=2 refined, then the others by their document
value) get their sentences' reference values; the other sentences an equal share of
their document's value (``unrefined="split"``). Costs are the decoded tokens of the
two levels' tries (the document level with the unperturbed prompt; the sentence level
without it, reused on exact models), counted from the prompts with SmolLM2's
tokenizer; for keep=2 they are checked against the engine's measured ``n_decoded``.

    python bench/context_keep_sweep.py [--keeps 2 3 4 5] [--rows bench/results/context-set.jsonl]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from context_attribution import TEMPLATE, load_cases, metrics
from runners import trie_size

import pyllmattr as pla
from pyllmattr import chat


def sweep(spec: dict, rows: dict, model: object, keeps: list[int]) -> list[dict]:
    inp = pla.ContextInput(spec["documents"], spec["question"], template=TEMPLATE)
    encoding = chat.encode(inp, model, chat.chat_options(True))
    answer = model.tokenize(spec["answer"], add_special=False)
    doc_of = inp.parent_index("sentence", "document")
    n, d = len(doc_of), len(spec["documents"])
    reference = np.asarray(rows["pla-loo"]["values"])
    split = np.asarray(rows["hierarchical-k2"]["values"])
    refined = np.asarray(rows["hierarchical-k2"]["refined"])
    sizes = np.bincount(doc_of)
    doc_value = np.array([split[doc_of == k].sum() for k in range(d)])
    doc_value[np.unique(doc_of[refined])] = np.inf  # the two keep=2 refined first
    order = np.argsort(-doc_value, kind="stable")

    def prompt(removed: np.ndarray) -> list[int]:
        present = np.ones(n, dtype=bool)
        present[removed] = False
        return encoding.render(present, None)

    level1 = trie_size([encoding.reference_ids] + [prompt(doc_of == k) for k in range(d)], answer)
    out = []
    for keep in keeps:
        kept = order[:keep]
        fine = np.isin(doc_of, kept)
        values = np.where(fine, reference, 0.0)
        for k in set(range(d)) - set(kept.tolist()):
            share = split[doc_of == k].sum() / sizes[k]
            values[doc_of == k] = share
        level2 = trie_size([prompt(np.array([s])) for s in np.flatnonzero(fine)], answer)
        row = {"keep": keep, "decoded": level1 + level2, **metrics(list(values), reference)}
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keeps", nargs="*", type=int, default=[2, 3, 4, 5])
    parser.add_argument("--rows", type=Path, default=Path("bench/results/context-set.jsonl"))
    args = parser.parse_args()
    from context_report import load

    rows, _ = load([args.rows])
    specs = {c["id"]: c for c in load_cases(None, None)}
    model = pla.load_gguf(pla.default_model_path(), n_ctx=4096, n_threads=1)
    per_keep: dict[int, list[dict]] = {k: [] for k in args.keeps}
    checks = []
    for case, methods in rows.items():
        if not {"pla-loo", "hierarchical-k2"} <= set(methods):
            continue
        for row in sweep(specs[case], methods, model, args.keeps):
            row["loo_decoded"] = methods["pla-loo"]["decoded"]
            per_keep[row["keep"]].append(row)
            if row["keep"] == 2:
                checks.append(row["decoded"] - methods["hierarchical-k2"]["decoded"])
    print("| keep | cases | decoded tokens, mean | × fewer than sentence LOO (median) "
          "| top-1 | top-3 | Spearman |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for keep, found in per_keep.items():
        ratio = np.median([r["loo_decoded"] / r["decoded"] for r in found])
        print(
            f"| {keep} | {len(found)} | {np.mean([r['decoded'] for r in found]):.0f} | "
            f"{ratio:.2f}x | {np.mean([r['top1'] for r in found]):.2f} | "
            f"{np.mean([r['top3'] for r in found]):.2f} | "
            f"{np.mean([r['spearman'] for r in found]):.2f} |"
        )
    print(f"\nkeep=2 counted minus measured decoded tokens, per case: {checks}")


if __name__ == "__main__":
    main()
