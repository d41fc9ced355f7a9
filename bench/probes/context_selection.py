"""Which coarse units hierarchical ablation should refine: selection rules, simulated exactly.

On an exact model a refined sentence's value is its leave-one-out value bit for bit
(bench/results/context-set.jsonl: every refined value of ``hierarchical-k2`` equals
``pla-loo``'s). So any rule that picks the coarse units to refine can be simulated
from the reference run: the picked units' sentences get their reference values, the
others an equal share of their unit's value (``unrefined="split"``). The cost is the
decoded tokens of the coarse level's trie (with the unperturbed prompt) plus the
refined sentences' trie (the unperturbed score is reused on exact models), counted
from the prompts with SmolLM2's tokenizer; where the benchmark ran a rule (keep=2,
and keep=2 with keep_alone=2) the count is checked against the engine's ``n_decoded``.

Rules compared:
- document leave-one-out, refine the ``keep`` strongest (what the benchmark runs);
- paragraph leave-one-out, refine the ``keep`` strongest paragraphs;
- document leave-one-out keep=2, plus the two documents that best support the answer
  alone (the answer's log-prob with only that document as context): what
  ``HierarchicalAblation(keep=2, keep_alone=2)`` does, its extra prompts counted;
- oracle: the documents that hold the reference's top 3 (what perfect selection costs).

The scores the rules need beyond the run (document and paragraph leave-one-out, the
document-only prompts; each one engine call) are computed here and cached in
``--scores``.

    python bench context_selection [--rows bench/results/context-set.jsonl] [--threads 2]
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from harness import RESULTS
from harness.context_attribution import TEMPLATE, load_cases, metrics
from harness.runners import trie_size

import pyllmattr as pla
from pyllmattr import chat

TIE_NATS = 0.1  # "top-3 within 0.1 nats": a pick counts if it scores within this of the 3rd
ALONE = "keep_alone"  # rules that also score each document on its own
MEASURED = {
    "document LOO, keep=2": "hierarchical-k2",
    f"document LOO keep=2 + {ALONE}=2": "hierarchical-k2-alone2",
}


class SelectionCase:
    """One case's prompts, reference values and the coarse units' scores."""

    def __init__(self, spec: dict, rows: dict, model: Any) -> None:
        self.inp = pla.ContextInput(spec["documents"], spec["question"], template=TEMPLATE)
        self.encoding = chat.encode(self.inp, model, chat.chat_options(True))
        self.answer = model.tokenize(spec["answer"], add_special=False)
        self.model = model
        self.reference = np.asarray(rows["pla-loo"]["values"])
        self.loo_decoded = rows["pla-loo"]["decoded"]
        self.measured = {  # rule -> the engine's n_decoded, where the benchmark ran it
            rule: rows[method]["decoded"] for rule, method in MEASURED.items() if method in rows
        }
        self.n = len(self.reference)
        self.parent = {
            lv: self.inp.parent_index("sentence", lv) for lv in ("document", "paragraph")
        }

    def prompt(self, present: np.ndarray) -> list[int]:
        return self.encoding.render(present, None)

    def without(self, removed: np.ndarray) -> list[int]:
        return self.prompt(~removed)

    def total(self, prompts: list[list[int]]) -> np.ndarray:
        scores = self.model.score(prompts, self.answer, share_prefix=True)
        return np.asarray(scores).sum(axis=1)

    def scores(self) -> dict[str, list[float]]:
        """Leave-one-out values of documents and paragraphs, and document-only scores."""
        out: dict[str, list[float]] = {}
        for level, parent in self.parent.items():
            units = range(parent.max() + 1)
            totals = self.total(
                [self.encoding.reference_ids] + [self.without(parent == u) for u in units]
            )
            out[level] = (totals[0] - totals[1:]).tolist()
        docs = self.parent["document"]
        alone = self.total([self.prompt(docs == d) for d in range(docs.max() + 1)])
        out["document_only"] = alone.tolist()
        return out

    @functools.cache  # noqa: B019 (one case per object; every rule asks again)
    def coarse_cost(self, level: str, alone: bool) -> int:
        """The coarse level's call: the unperturbed prompt, each unit removed and, with
        ``alone``, each unit on its own (one trie, as keep_alone scores them)."""
        parent = self.parent[level]
        units = range(parent.max() + 1)
        prompts = [self.without(parent == u) for u in units]
        if alone:
            prompts += [self.prompt(parent == u) for u in units]
        return trie_size([self.encoding.reference_ids] + prompts, self.answer)

    def simulate(
        self, level: str, unit_values: np.ndarray, kept: list[int], alone: bool
    ) -> dict[str, float]:
        """Refine the kept units of ``level``: values, agreement and decoded tokens."""
        parent = self.parent[level]
        fine = np.isin(parent, kept)
        sizes = np.bincount(parent)
        values = np.where(fine, self.reference, unit_values[parent] / sizes[parent])
        refined = [self.without(np.arange(self.n) == s) for s in np.flatnonzero(fine)]
        decoded = self.coarse_cost(level, alone) + trie_size(refined, self.answer)
        found = metrics(list(values), self.reference)
        found["top3_tied"] = tied_top3(values, self.reference)
        found["fewer"] = self.loo_decoded / decoded
        found["decoded"] = decoded
        return found

    def oracle(self) -> list[int]:
        top3 = np.argsort(-self.reference, kind="stable")[:3]
        return sorted({int(self.parent["document"][s]) for s in top3})


def tied_top3(values: np.ndarray, reference: np.ndarray) -> float:
    """Share of the top 3 picks whose reference value is within TIE_NATS of the 3rd best."""
    third = np.sort(reference)[-3]
    picks = np.argsort(-values, kind="stable")[:3]
    return float(np.mean(reference[picks] >= third - TIE_NATS))


def strongest(values: np.ndarray, k: int) -> list[int]:
    return [int(u) for u in np.argsort(-np.asarray(values), kind="stable")[:k]]


def rules(keeps: list[int]) -> dict[str, tuple[str, Callable[[dict, SelectionCase], list[int]]]]:
    """Rule name -> (level refined, units to refine given the scores)."""
    out: dict[str, tuple[str, Callable[[dict, SelectionCase], list[int]]]] = {}
    for k in keeps:
        out[f"document LOO, keep={k}"] = ("document", lambda s, c, k=k: strongest(s["document"], k))
    for k in [2 * k for k in keeps]:
        out[f"paragraph LOO, keep={k}"] = (
            "paragraph",
            lambda s, c, k=k: strongest(s["paragraph"], k),
        )
    out[f"document LOO keep=2 + {ALONE}=2"] = (
        "document",
        lambda s, c: sorted(set(strongest(s["document"], 2) + strongest(s["document_only"], 2))),
    )
    out["oracle: the documents of the reference's top 3"] = ("document", lambda s, c: c.oracle())
    return out


def cached_scores(path: Path, case_id: str, case: SelectionCase) -> dict[str, list[float]]:
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["case"] == case_id:
                return record["scores"]
    found = case.scores()
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"case": case_id, "scores": found}) + "\n")
    return found


def table(per_rule: dict[str, list[dict[str, float]]]) -> str:
    lines = [
        "| rule | cases | × fewer tokens than sentence LOO (median) | worst case | top-1 | top-3 "
        f"| top-3 within {TIE_NATS} nats | Spearman |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, found in per_rule.items():
        fewer = [r["fewer"] for r in found]
        lines.append(
            f"| {name} | {len(found)} | {np.median(fewer):.2f}x | {min(fewer):.2f}x | "
            + " | ".join(
                f"{np.mean([r[k] for r in found]):.2f}"
                for k in ("top1", "top3", "top3_tied", "spearman")
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, default=RESULTS / "context-set.jsonl")
    parser.add_argument("--scores", type=Path, default=RESULTS / "context-selection-scores.jsonl")
    parser.add_argument("--keeps", nargs="*", type=int, default=[2, 3, 4])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from harness.context_report import load

    rows, _ = load([args.rows])
    specs = {c["id"]: c for c in load_cases(None, None)}
    model = pla.load_gguf(pla.default_model_path(), n_ctx=4096, n_threads=args.threads)
    per_rule: dict[str, list[dict[str, float]]] = {name: [] for name in rules(args.keeps)}
    checks: dict[str, list[int]] = {}
    near_ties = 0
    for case_id, methods in sorted(rows.items()):
        if methods.get("pla-loo", {}).get("layout") != "exact":
            continue
        case = SelectionCase(specs[case_id], methods, model)
        scores = {k: np.asarray(v) for k, v in cached_scores(args.scores, case_id, case).items()}
        for name, (level, pick) in rules(args.keeps).items():
            found = case.simulate(level, scores[level], pick(scores, case), ALONE in name)
            per_rule[name].append(found)
            if name in case.measured:
                checks.setdefault(name, []).append(found["decoded"] - case.measured[name])
        ordered = np.sort(case.reference)[::-1]
        near_ties += int(ordered[2] - ordered[3] < TIE_NATS)
    print(table(per_rule))
    for name, found in checks.items():
        print(f"\n{name}: counted minus measured decoded tokens, per case: {found}")
    n_cases = len(per_rule["document LOO, keep=2"])
    print(f"cases whose reference 3rd and 4th sentences lie within {TIE_NATS} nats: "
          f"{near_ties} of {n_cases}")  # fmt: skip


if __name__ == "__main__":
    main()
