"""Shapley interactions: pyllmattr's engine against shapiq on a PyTorch forward, SPEX, grouping.

Three parts, each a list of records in the --out JSON (``--render`` makes the section):

* ``peers``: k-SII of order 2 over the word features of prompts of 8, 12 and 40 words,
  at the same budget of coalitions, by ``pla.ShapleyInteractions`` (llama.cpp, the
  shipped Q4_1 GGUF, prefix-shared batches; on the default exact layout and on the fast
  one, ``deterministic=False``) and by shapiq 1.4.1 run directly, the way a
  shapiq user would do it today: the same estimator (KernelSHAP-IQ, shapiq's choice
  for k-SII; at 8 words the budget is 2^8, where pyllmattr computes exactly and
  KernelSHAP-IQ is exact too) with the same random state, on a value function that
  scores the same prompt token ids in batches of a float32 PyTorch forward of the
  same GGUF (transformers). Time of each side, and agreement with each other and, at
  8 and 12 words, with pyllmattr's exact values (all 2^n coalitions).
* ``spex``: SPEX and ProxySPEX (shapiq's estimators for many features) on the 12-word
  prompt against its exact values (top pairs, Spearman), at their smallest budget and at
  ``--spex-budget``, then on a 115-word context (the four documents of study 6's r01 and
  a fifth from r02, one feature per word): cost in prompts, decoded tokens and seconds
  (engine vs the estimator's own work), and what they find.
* ``grouping``: study 4's question with interaction indices: over the 34 people
  templates (study 4's baselines and greedy 6-token targets), exact SII of the pairs
  (name, pronoun) and (city, state) against the members' Shapley values, and how far
  the grouped pair's Shapley value (``mask=``) is from the sum of its members'.

    python bench interactions                        # all parts (--parts to choose)
    python bench interactions --parts peers --sizes 8,12
    python bench interactions --quick --out /tmp/interactions.json
    python bench interactions --render bench/results/interactions.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import pyllmattr as pla
from harness import RESULTS, Clock, command_line
from harness.prompt_sets import RETRIEVAL_TEMPLATE, first_alternatives, greedy, read_jsonl
from pyllmattr.methods.lasso import spearman

OUT = RESULTS / "interactions.json"
MARKDOWN = RESULTS / "interactions.md"
PARTS = ("peers", "spex", "grouping")
TEXTS = {
    8: "Dave lives in Palm Coast and is a",
    12: "Dave lives in Palm Coast, FL and is a lawyer. He likes",
    40: (
        "Maria grew up in a fishing village on the coast. Every morning she walked with "
        "her father to the harbor, where the boats came back full of fish. Later she "
        "opened a restaurant in the city, and its famous dish"
    ),
}
BUDGETS = {8: 256, 12: 512, 40: 900}  # at 40 words KernelSHAP-IQ needs at least 821
QUICK_BUDGETS = {8: 256, 12: 128, 40: 850}
SPEX_QUESTION, SPEX_DISTRACTOR = "r01", "r02"  # retrieval_documents.jsonl
N_TARGET = 2  # greedy target tokens of the word prompts
TOP = 5  # top pairs compared


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--sizes", default="8,12,40", help="word counts of the peer prompts")
    parser.add_argument("--quick", action="store_true", help="smaller budgets, 3 templates")
    parser.add_argument("--threads", type=int, default=0, help="0: 1 when the load exceeds "
                        "the cores, else 2 (as the studies)")  # fmt: skip
    parser.add_argument("--spex-words", default="12,115", help="12 and/or 115 (the context)")
    parser.add_argument("--spex-budget", default="1024", help="more budgets at 12 words")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs up to 12 words")
    parser.add_argument("--batch", type=int, default=16, help="PyTorch sequences per forward")
    parser.add_argument("--model", help="a .gguf file (default: pla.default_model_path())")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON (records are merged)")
    parser.add_argument("--render", type=Path, nargs="*", help="JSON files to summarize")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN)
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := [p for p in args.parts if p not in PARTS]:
        parser.error(f"unknown parts {unknown}; use some of {list(PARTS)}")
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if unknown := [s for s in args.sizes if s not in TEXTS]:
        parser.error(f"no prompt of {unknown} words; use some of {list(TEXTS)}")
    args.spex_words = [int(w) for w in args.spex_words.split(",") if w.strip()]
    args.spex_budget = [int(b) for b in args.spex_budget.split(",") if b.strip()]
    args.threads = args.threads or threads_for_load()
    return args


def threads_for_load() -> int:
    """Two threads on a quiet machine, one when busier than its cores: llama.cpp's
    thread pool then waits on its slowest thread (docs/studies.md, Timings)."""
    return 1 if os.getloadavg()[0] > (os.cpu_count() or 1) else 2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the two sides


class WordGame:
    """A word-feature prompt bound to the llama.cpp model: its input, target ids and the
    exact prompt token ids of any coalition (as pyllmattr renders them)."""

    def __init__(self, inp: Any, model: Any, target: list[int]) -> None:
        from pyllmattr import chat

        self.inp, self.model, self.target = inp, model, list(target)
        self.encoding = chat.encode(inp, model, chat.chat_options(False))
        self.n = self.encoding.n_features
        self.labels = (
            list(inp.labels) if hasattr(inp, "labels") else [str(i) for i in range(self.n)]
        )

    def ids(self, coalition: np.ndarray) -> list[int]:
        return list(self.encoding.render(np.asarray(coalition, dtype=bool), None))


class TorchValue:
    """shapiq's value function on PyTorch: log p(target) of each coalition's prompt, in
    batches of ``batch`` right-padded sequences (sorted by length), float32 forward.

    Example:
        >>> value = TorchValue(side, game, batch=16)  # doctest: +SKIP
        >>> value(np.ones((1, game.n), dtype=bool))  # doctest: +SKIP
    """

    def __init__(self, side: Any, game: WordGame, batch: int) -> None:
        from pyllmattr.pipeline.scoring import empty_context

        self.side, self.game, self.batch = side, game, batch
        # With every word removed, the start token stands for the empty context, as in
        # pyllmattr (otherwise the game's empty coalition would differ).
        self.empty = empty_context(game.model)
        self.n_coalitions = self.n_calls = self.tokens = 0

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        prompts = [self.game.ids(c) or self.empty for c in np.atleast_2d(coalitions)]
        order = np.argsort([len(p) for p in prompts], kind="stable")
        values = np.empty(len(prompts))
        for start in range(0, len(order), self.batch):
            rows = order[start : start + self.batch]
            values[rows] = self.score([prompts[i] for i in rows])
        self.n_coalitions += len(prompts)
        self.n_calls += 1
        return values

    def score(self, prompts: list[list[int]]) -> np.ndarray:
        import torch

        target = self.game.target
        seqs = [p + target for p in prompts]
        width = max(map(len, seqs))
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        self.tokens += int(mask.sum())
        with torch.no_grad():
            logits = self.side.model(input_ids=ids, attention_mask=mask).logits
        out = np.empty(len(prompts))
        for i, p in enumerate(prompts):
            at = torch.arange(len(p) - 1, len(p) - 1 + len(target))
            logp = torch.log_softmax(logits[i, at].double(), dim=-1)
            out[i] = float(logp[torch.arange(len(target)), torch.tensor(target)].sum())
        return out


def pla_side(
    game: WordGame, budget: int | None, seed: int, approximator: str = "auto", model: Any = None
) -> dict:
    """pyllmattr's k-SII on ``model`` (default: the game's, the exact layout)."""
    with Clock() as clock:
        result = pla.ShapleyInteractions(model or game.model).attribute(
            game.inp, target=game.target, index="k-SII", order=2, budget=budget,
            approximator=approximator, seed=seed, progress=False,
        )  # fmt: skip
    stats = result.stats
    return {
        "values": {",".join(map(str, k)): v for k, v in result.interactions.items()},
        "seconds": clock.wall, "cpu_seconds": clock.cpu,
        "engine_seconds": float(stats.get("seconds", 0.0)),
        "prompts": int(stats.get("n_evaluations", 0)), "decoded": int(stats.get("n_decoded", 0)),
        "calls": int(stats.get("n_batches", 0)), "approximator": result.approximator,
        "budget_used": result.budget_used, "exact": bool(result.exact),
    }  # fmt: skip


def peer_side(game: WordGame, side: Any, budget: int, seed: int, batch: int) -> dict:
    import shapiq

    # pyllmattr's estimator gets random_state = default_rng(seed).integers(2**31 - 1):
    # the same state here samples the same coalitions.
    state = int(np.random.default_rng(seed).integers(2**31 - 1))
    value = TorchValue(side, game, batch)
    with Clock() as clock:
        estimator = shapiq.KernelSHAPIQ(n=game.n, index="k-SII", max_order=2, random_state=state)
        found = estimator.approximate(budget, value)
    values = {
        ",".join(map(str, key)): float(found.values[at])
        for key, at in found.interaction_lookup.items()
        if 1 <= len(key) <= 2
    }
    return {
        "values": values, "seconds": clock.wall, "cpu_seconds": clock.cpu,
        "prompts": value.n_coalitions, "decoded": value.tokens, "calls": value.n_calls,
        "approximator": type(estimator).__name__,
    }  # fmt: skip


# ---------------------------------------------------------------- agreement


def pairs_of(values: dict[str, float], n: int) -> np.ndarray:
    return np.array([values.get(f"{i},{j}", 0.0) for i in range(n) for j in range(i + 1, n)])


def singles_of(values: dict[str, float], n: int) -> np.ndarray:
    return np.array([values.get(str(i), 0.0) for i in range(n)])


def agreement(a: dict[str, float], b: dict[str, float], n: int) -> dict[str, float]:
    """Of ``a`` against ``b``: Pearson and max |difference| over pairs and main effects,
    and the overlap of the top pairs by |value|."""
    pa, pb = pairs_of(a, n), pairs_of(b, n)
    sa, sb = singles_of(a, n), singles_of(b, n)
    top = min(TOP, len(pa))
    overlap = len(set(np.argsort(-np.abs(pa))[:top]) & set(np.argsort(-np.abs(pb))[:top]))
    return {
        "pairs_pearson": float(np.corrcoef(pa, pb)[0, 1]) if len(pa) > 1 else float("nan"),
        "pairs_spearman": spearman(pa, pb) if len(pa) > 2 else float("nan"),
        "pairs_max_abs": float(np.max(np.abs(pa - pb))),
        "pairs_scale": float(np.max(np.abs(pb))),
        "singles_pearson": float(np.corrcoef(sa, sb)[0, 1]),
        "singles_max_abs": float(np.max(np.abs(sa - sb))),
        "top_pairs_overlap": overlap / top,
    }


def top_pairs(values: dict[str, float], labels: list[str], k: int = TOP) -> list[list[Any]]:
    pairs = [(key, v) for key, v in values.items() if "," in key]
    pairs.sort(key=lambda kv: -abs(kv[1]))
    return [[[labels[int(i)] for i in key.split(",")], v] for key, v in pairs[:k]]


# ---------------------------------------------------------------- parts


def word_game(model: Any, words: int) -> WordGame:
    inp = pla.TextTemplateInput.from_text(TEXTS[words], by="word")
    if inp.n_features != words:
        raise RuntimeError(f"the {words}-word text has {inp.n_features} word features")
    return WordGame(inp, model, greedy(model, TEXTS[words], N_TARGET))


EXACT: dict[int, dict] = {}  # word count -> pyllmattr's exact values (peers and spex share)


def exact_of(game: WordGame, words: int) -> dict:
    if words not in EXACT:
        EXACT[words] = pla_side(game, 2**words, seed=0)
    return EXACT[words]


SIDES = ("pla", "fast", "peer")  # exact layout, fast layout, shapiq on PyTorch


def timed_sides(
    args: argparse.Namespace, game: WordGame, models: dict[str, Any], budget: int, words: int
) -> dict[str, dict]:
    """The three sides, ``--repeats`` times up to 12 words (once at 40), taking turns (the
    order rotates) so that a shared machine's load falls on all alike; each keeps its
    first run's values and the median times."""
    runs: dict[str, list[dict]] = {who: [] for who in SIDES}
    sides = {
        "pla": lambda: pla_side(game, budget, seed=0),
        "fast": lambda: pla_side(game, budget, seed=0, model=models["fast"]),
        "peer": lambda: peer_side(game, models["torch"], budget, seed=0, batch=args.batch),
    }
    for r in range(args.repeats if words <= 12 else 1):
        for who in SIDES[r % 3 :] + SIDES[: r % 3]:
            runs[who].append(sides[who]())
    out = {}
    for who in SIDES:
        first = runs[who][0]
        first["runs_seconds"] = [run["seconds"] for run in runs[who]]
        first["seconds"] = float(np.median(first["runs_seconds"]))
        first["cpu_seconds"] = float(np.median([run["cpu_seconds"] for run in runs[who]]))
        out[who] = first
    return out


def part_peers(args: argparse.Namespace, models: dict[str, Any]) -> list[dict]:
    records = []
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    for words in args.sizes:
        game, budget = word_game(models["llama"], words), budgets[words]
        log(f"peers: {words} words, budget {budget}")
        record = {"part": "peers", "words": words, "budget": budget, "labels": game.labels,
                  "target": game.model.detokenize(game.target),
                  "threads": args.threads}  # fmt: skip
        record.update(timed_sides(args, game, models, budget, words))
        log("  " + ", ".join(f"{who} {record[who]['seconds']:.1f} s" for who in SIDES))
        record["peer_vs_pla"] = agreement(record["peer"]["values"], record["pla"]["values"], words)
        record["fast_vs_pla"] = agreement(record["fast"]["values"], record["pla"]["values"], words)
        if words <= 12:
            if record["pla"]["exact"]:
                EXACT[words] = record["pla"]
            exact = exact_of(game, words)
            record["exact"] = {k: v for k, v in exact.items() if k != "values"}
            for who in SIDES:
                record[f"{who}_vs_exact"] = agreement(record[who]["values"], exact["values"], words)
        records.append(record)
    return records


def part_spex(args: argparse.Namespace, model: Any) -> list[dict]:
    """SPEX and ProxySPEX on the 12-word prompt at their smallest budget and at
    ``--spex-budget`` against exact values, then on the long context."""
    records = []
    if 12 in args.spex_words:
        game = word_game(model, 12)
        exact = exact_of(game, 12)
        for budget in sorted({spex_budget(game.n), *args.spex_budget}):
            for approximator in ("spex", "proxyspex"):
                log(f"spex: 12 words, {approximator}, budget {budget}")
                found = pla_side(game, budget, seed=0, approximator=approximator)
                records.append({
                    "part": "spex", "words": 12, "approximator": approximator,
                    "budget": budget, "result": {k: v for k, v in found.items() if k != "values"},
                    "vs_exact": agreement(found["values"], exact["values"], game.n),
                    "top": top_pairs(found["values"], game.labels),
                    "exact_top": top_pairs(exact["values"], game.labels),
                })  # fmt: skip
    if any(w > 12 for w in args.spex_words):
        records += long_context_spex(args, model)
    return records


def spex_budget(n: int) -> int:
    """SPEX's smallest design for n features; ProxySPEX gets the same budget."""
    from pyllmattr.methods.interactions import minimum_budget

    return minimum_budget(n, "k-SII", 2, "spex")


def long_context_spex(args: argparse.Namespace, model: Any) -> list[dict]:
    records = {r["id"]: r for r in read_jsonl("retrieval_documents.jsonl")}
    record = records[SPEX_QUESTION]
    # Its four documents have 89 words: another question's first document (a prize
    # awarded in 2019) makes a fifth, a distractor with a year in it.
    documents = [*record["documents"], records[SPEX_DISTRACTOR]["documents"][0]]
    inp = pla.ContextInput(documents, record["question"], template=RETRIEVAL_TEMPLATE, by="word")
    game = WordGame(inp, model, model.tokenize(record["answer"], add_special=False))
    found_by: dict[str, dict] = {}
    out = []
    for approximator in ("spex", "proxyspex"):
        budget = spex_budget(game.n)
        log(f"spex: {game.n} words, {approximator}, budget {budget}")
        found = pla_side(game, budget, seed=0, approximator=approximator)
        found_by[approximator] = found
        out.append({
            "part": "spex", "words": game.n, "approximator": approximator, "budget": budget,
            "prompt_tokens": len(game.ids(np.ones(game.n, dtype=bool))),
            "result": {k: v for k, v in found.items() if k != "values"},
            "top": top_pairs(found["values"], game.labels),
        })  # fmt: skip
    out[-1]["vs_spex"] = agreement(
        found_by["proxyspex"]["values"], found_by["spex"]["values"], game.n
    )
    return out


def part_grouping(args: argparse.Namespace, model: Any) -> list[dict]:
    """Study 4's prompts: exact SII of the two pairs and the grouped Shapley values."""
    groups = {"name": 0, "pronoun": 0, "city": 1, "state": 1, "job": 2}
    records = read_jsonl("people_templates.jsonl")[: 3 if args.quick else None]
    out = []
    for record in records:
        values, template = record["values"], record["template"]
        baselines = first_alternatives(record)
        target = greedy(model, template.format(**values), 6)
        apart = pla.TextTemplateInput(template, values, baselines=baselines)
        sii = pla.ShapleyInteractions(model).attribute(
            apart, target=target, index="SII", order=2, progress=False
        )
        grouped = pla.ShapleyValues(model).attribute(
            pla.TextTemplateInput(template, values, baselines=baselines, mask=groups),
            target=target, progress=False,
        )  # fmt: skip
        keys = list(values)
        out.append({
            "part": "grouping", "id": record["id"], "keys": keys,
            "interactions": {",".join(map(str, k)): v for k, v in sii.interactions.items()},
            "grouped": [float(v) for v in grouped.seq_attr],
            "full_minus_empty": float(sum(v for k, v in sii.interactions.items() if len(k) == 1)),
        })  # fmt: skip
    log(f"grouping: {len(out)} templates")
    return out


# ---------------------------------------------------------------- running


def meta(args: argparse.Namespace) -> dict[str, Any]:
    from importlib import metadata

    return {
        "command": command_line("interactions"),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "threads": args.threads,
        "model": Path(str(args.model or pla.default_model_path())).name,
        "versions": {p: metadata.version(p) for p in ("pyllmattr", "shapiq", "torch")},
    }  # fmt: skip


def run(args: argparse.Namespace) -> int:
    path = args.model or pla.default_model_path()
    models = {"llama": pla.load_gguf(path, n_threads=args.threads)}
    run_record: dict[str, Any] = {"meta": meta(args), "records": []}
    if "peers" in args.parts:
        from harness.torch_gguf import TorchGGUF

        models["fast"] = pla.load_gguf(path, n_threads=args.threads, deterministic=False)
        with Clock() as clock:
            models["torch"] = TorchGGUF(path, threads=args.threads)
        run_record["meta"]["torch_load_seconds"] = clock.wall
    for name in ("llama", "fast"):
        if name in models:  # the first call runs the exact layout's self-check
            models[name].score([models[name].tokenize("Warm up.")], [13])
    for part in args.parts:
        with Clock() as clock:
            if part == "peers":
                run_record["records"] += part_peers(args, models)
            elif part == "spex":
                run_record["records"] += part_spex(args, models["llama"])
            else:
                run_record["records"] += part_grouping(args, models["llama"])
        run_record["meta"][f"{part}_seconds"] = clock.wall
    run_record["meta"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    # Read just before writing: another run may have added its records meanwhile.
    previous = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    previous["runs"].append(run_record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=1))
    log(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        from harness.interactions_report import write_report

        return write_report(args.render or [args.out], args.markdown)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
