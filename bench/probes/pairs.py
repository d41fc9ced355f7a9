"""score_pairs against one score call per target: decoded tokens and time, interleaved.

Two workloads on the shipped SmolLM2 Q4_1, 2 threads:

- *one prompt, 4 targets*: the job 3 prompt (8 passages and a question) followed by 4
  different answers: ``score_pairs`` decodes the prompt once, 4 ``score`` calls 4 times;
- *leave-one-out, 2 targets*: token-level leave-one-out of the job 1 prompt with a target
  and a contrast (what a contrastive feature ablation scores): one ``score_pairs`` call
  over all pairs against one ``score`` call per target.

    python bench pairs [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from harness.texts import ANSWER, PALM_COAST, PASSAGES, retrieval_template

import pyllmattr as pla

ANSWERS = [ANSWER, " It was built in 1903.", " Nobody knows.", " The lighthouse keeper did."]
CONTRAST = (" wife. He has a wife and two", " dog. He has a dog and two")


def one_prompt_four_targets(model) -> tuple[list[list[int]], list[list[int]]]:
    prompt = model.tokenize(retrieval_template(8).format(*PASSAGES[:8]))
    targets = [model.tokenize(t, add_special=False) for t in ANSWERS]
    return [prompt] * len(targets), targets


def leave_one_out_two_targets(model) -> tuple[list[list[int]], list[list[int]]]:
    ids = model.tokenize(PALM_COAST)
    sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    targets = [model.tokenize(t, add_special=False) for t in CONTRAST]
    return [s for _ in targets for s in sequences], [t for t in targets for _ in sequences]


def per_target_calls(model, sequences, targets):
    """One score call per distinct target (what callers did before score_pairs)."""
    decoded, groups = 0, {}
    for i, t in enumerate(targets):
        groups.setdefault(tuple(t), []).append(i)
    for target, rows in groups.items():
        _, stats = model.score([sequences[i] for i in rows], list(target), return_stats=True)
        decoded += stats.n_decoded
    return decoded


def measure(model, workload, repeats: int) -> dict:
    sequences, targets = workload(model)
    pairs_s, calls_s = [], []
    for r in range(repeats):  # interleaved, alternating which goes first
        for kind in ("pairs", "calls") if r % 2 == 0 else ("calls", "pairs"):
            start = time.perf_counter()
            if kind == "pairs":
                _, stats = model.score_pairs(sequences, targets, return_stats=True)
                pairs_s.append(time.perf_counter() - start)
                pairs_decoded, trie = stats.n_decoded, stats.n_trie
            else:
                calls_decoded = per_target_calls(model, sequences, targets)
                calls_s.append(time.perf_counter() - start)
    return {
        "pairs": len(sequences),
        "targets": len({tuple(t) for t in targets}),
        "trie": trie,
        "score_pairs decoded": pairs_decoded,
        "score calls decoded": calls_decoded,
        "score_pairs median s": float(np.median(pairs_s)),
        "score calls median s": float(np.median(calls_s)),
        "calls / pairs time": float(np.median(calls_s) / np.median(pairs_s)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with pla.load_gguf(pla.default_model_path(), n_ctx=4096, n_threads=2) as model:
        for name, workload in (
            ("one prompt, 4 targets", one_prompt_four_targets),
            ("leave-one-out, 2 targets", leave_one_out_two_targets),
        ):
            results[name] = measure(model, workload, args.repeats)
            print(name, json.dumps(results[name]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
