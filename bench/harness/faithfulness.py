"""Which attribution to believe: every method's faithfulness (pla.evaluate) against its cost.

On the prompt sets of examples/data/ (``harness.prompt_sets``: people templates,
few-shot, context QA), every method attributes each input, at equal budgets of scored
prompts where the method has one (``--budget``, per set), and ``pla.evaluate`` scores
all of an input's results in one engine call with the same seed (so the same random
orders and ablations): LDS, AOPC deletion and insertion (ERASER's comprehensiveness and
sufficiency, averaged over 1/5/10/20/50 % of the features), agreement with exact
Shapley values (at most 12 features), and the cost: prompts, decoded tokens, wall and
CPU seconds. Gradient methods run on PyTorch (``pla.load_torch_gguf``: the same GGUF
dequantized to float32) and are evaluated on the same llama.cpp model as the others.

One JSON line per (set, input, method) is appended to --out as soon as it is measured,
and a ``meta`` line per run; ``--render`` turns the lines into the report section and
the figure of faithfulness against cost.

    python bench faithfulness                         # perturbation methods, three sets
    python bench faithfulness --sets people --methods gradient    # + PyTorch gradients
    python bench faithfulness --quick --out /tmp/faith.jsonl      # 2 inputs per set
    python bench faithfulness --render bench/results/faithfulness.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import pyllmattr as pla
from harness import REPO, RESULTS, Clock, command_line
from harness.prompt_sets import SETS, Item, load_set
from pyllmattr.methods.lasso import spearman

OUT = RESULTS / "faithfulness.jsonl"
MARKDOWN = RESULTS / "faithfulness.md"
PLOT = REPO / "docs" / "faithfulness-cost.png"
# Inputs per set (full run; --quick: 2) and the budget of scored prompts per input for
# the methods that take one: half of exact Shapley's 2^5 on the people templates, a
# quarter of its 2^8 on the few-shot prompt, about 5 n on the 12 context sentences.
INPUTS = {"people": 14, "few-shot": 18, "context": 8}
BUDGETS = {"people": 16, "few-shot": 64, "context": 64}
EXACT_MAX_FEATURES = 12
FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)
# pla.evaluate's settings per set: every feature on the small sets (at most 2^n distinct
# prompts anyway); on the 12 context sentences the curves stop at half of them (the
# largest fraction) and 4 random orders, which halves an evaluation's prompts.
EVALUATION = {
    "people": {"k": None, "n_random": 8, "n_ablations": 64},
    "few-shot": {"k": None, "n_random": 8, "n_ablations": 64},
    "context": {"k": 6, "n_random": 4, "n_ablations": 64},
}


@dataclass(frozen=True)
class Method:
    """One row of the table: a pyllmattr method with options from (n_features, budget)."""

    key: str
    label: str
    cls: str
    kind: str  # "perturbation" or "gradient"
    options: Callable[[int, int], dict[str, Any]]
    sets: tuple[str, ...] = SETS
    seeded: bool = False


def _none(n: int, budget: int) -> dict[str, Any]:
    return {}


METHODS = [
    Method("feature-ablation", "FeatureAblation (leave-one-out)", "FeatureAblation",
           "perturbation", _none),
    Method("shapley-exact", "ShapleyValues (exact, 2^n prompts)", "ShapleyValues",
           "perturbation", _none, ("people", "few-shot")),
    Method("shapley-sampling", "ShapleyValueSampling (budget / n permutations)",
           "ShapleyValueSampling", "perturbation",
           lambda n, b: {"n_samples": max(1, round(b / n))}, seeded=True),
    Method("kernel-shap", "KernelShap (budget samples)", "KernelShap", "perturbation",
           lambda n, b: {"n_samples": b}, seeded=True),
    Method("lime", "Lime (budget samples)", "Lime", "perturbation",
           lambda n, b: {"n_samples": b}, seeded=True),
    Method("context-cite", "ContextCite (budget masks, log p output)", "ContextCite",
           "perturbation", lambda n, b: {"n_samples": b, "output": "attr_target"},
           ("context",), seeded=True),
    Method("hierarchical", "HierarchicalAblation (document → sentence, keep=2)",
           "HierarchicalAblation", "perturbation",
           lambda n, b: {"levels": ("document", "sentence"), "keep": 2}, ("context",)),
    Method("integrated-gradients", "IntegratedGradients (n_steps='auto')",
           "IntegratedGradients", "gradient", lambda n, b: {"n_steps": "auto"}, ("people",)),
    Method("gradient-shap", "GradientShap (32 samples)", "GradientShap", "gradient",
           lambda n, b: {"n_samples": 32}, ("people",), seeded=True),
    Method("saliency", "Saliency (gradient L2 norm)", "Saliency", "gradient", _none, ("people",)),
    Method("input-x-gradient", "InputXGradient", "InputXGradient", "gradient", _none,
           ("people",)),
]  # fmt: skip
BY_KEY = {m.key: m for m in METHODS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma list of {SETS}")
    parser.add_argument(
        "--methods",
        default="perturbation",
        help="'perturbation', 'gradient', 'all' or a comma list of " + ", ".join(BY_KEY),
    )
    parser.add_argument("--inputs", type=int, help=f"inputs per set (default {INPUTS})")
    parser.add_argument("--budget", type=int, help=f"prompts per input (default {BUDGETS})")
    parser.add_argument("--quick", action="store_true", help="2 inputs per set")
    parser.add_argument("--threads", type=int, default=0, help="0: 1 when the load exceeds "
                        "the cores, else 2 (as the studies)")  # fmt: skip
    parser.add_argument("--model", help="a .gguf file (default: pla.default_model_path())")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON lines (appended)")
    parser.add_argument("--render", type=Path, nargs="*", help="JSON lines to summarize")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        parser.error(f"unknown sets {unknown}; use some of {list(SETS)}")
    args.methods = selected_methods(parser, args.methods)
    args.threads = args.threads or threads_for_load()
    return args


def threads_for_load() -> int:
    """Two threads on a quiet machine, one when busier than its cores: llama.cpp's
    thread pool then waits on its slowest thread (docs/studies.md, Timings)."""
    return 1 if os.getloadavg()[0] > (os.cpu_count() or 1) else 2


def selected_methods(parser: argparse.ArgumentParser, spec: str) -> list[Method]:
    """Methods by key or group ('perturbation', 'gradient', 'all'), in table order."""
    keys: set[str] = set()
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if token == "all":
            keys |= set(BY_KEY)
        elif token in ("perturbation", "gradient"):
            keys |= {m.key for m in METHODS if m.kind == token}
        elif token in BY_KEY:
            keys.add(token)
        else:
            parser.error(f"unknown method {token!r}; use groups or some of {list(BY_KEY)}")
    return [m for m in METHODS if m.key in keys]


# ---------------------------------------------------------------- measuring


def attribute(method: Method, model: Any, item: Item, budget: int, seed: int) -> tuple[Any, Clock]:
    options = method.options(item.n_features, budget)
    if method.seeded:
        options["seed"] = seed
    if method.kind == "gradient":
        options["per_token"] = False  # one backward per point: the whole target's
    with Clock() as clock:
        result = getattr(pla, method.cls)(model).attribute(
            item.inp, target=item.target, progress=False, **options
        )
    return result, clock


def run_item(
    item: Item, seed: int, methods: list[Method], models: dict[str, Any], budget: int
) -> list[dict[str, Any]]:
    """Every method on one input, then one evaluation of all their results."""
    mine = [m for m in methods if item.set in m.sets]
    exact = None
    if item.n_features <= EXACT_MAX_FEATURES and item.set in BY_KEY["shapley-exact"].sets:
        exact = pla.ShapleyValues(models["llama"]).attribute(
            item.inp, target=item.target, progress=False
        )  # the reference (scored again below when it is a row: its own timing)
    rows, results = [], []
    for method in mine:
        model = models["torch"] if method.kind == "gradient" else models["llama"]
        result, clock = attribute(method, model, item, budget, seed)
        results.append(result)
        rows.append(cost_row(item, method, result, clock))
        log(f"  {item.set} {item.id} {method.key}: {clock.wall:.1f} s")
    with Clock() as clock:
        faiths = pla.evaluate(
            results, models["llama"], seed=seed, fractions=FRACTIONS, **EVALUATION[item.set]
        )
    for row, result, faith in zip(rows, results, faiths, strict=True):
        row.update(faith_fields(faith))
        if exact is not None:
            row.update(agreement(result.seq_attr, exact.seq_attr))
    evaluation = {
        "set": item.set, "id": item.id, "method": "_evaluation", "n_results": len(results),
        "seconds": clock.wall, "cpu_seconds": clock.cpu,
        "prompts": int(faiths[0].stats.get("n_unique", 0)),
        "decoded": int(faiths[0].stats.get("n_decoded", 0)),
        "n_score_calls": int(faiths[0].stats.get("n_score_calls", 0)),
    }  # fmt: skip
    log(f"  {item.set} {item.id} evaluation: {clock.wall:.1f} s, {evaluation['prompts']} prompts")
    return [*rows, evaluation]


def cost_row(item: Item, method: Method, result: Any, clock: Clock) -> dict[str, Any]:
    stats = result.stats
    decoded = stats.get("n_decoded")
    if method.kind == "gradient":  # the path points' tokens, forward and backward
        decoded = int(stats.get("n_evaluations", 0)) * int(stats.get("n_tokens", 0))
    return {
        "set": item.set,
        "id": item.id,
        "n_features": item.n_features,
        "method": method.key,
        "kind": method.kind,
        "values": [float(v) for v in result.seq_attr],
        "prompts": int(stats.get("n_evaluations", 0)),
        "decoded": None if decoded is None else int(decoded),
        "seconds": clock.wall,
        "cpu_seconds": clock.cpu,
        "convergence": getattr(result, "convergence", None),
    }


def faith_fields(faith: Any) -> dict[str, Any]:
    return {
        "lds": faith.lds,
        "aopc_deletion": faith.aopc_deletion,
        "aopc_insertion": faith.aopc_insertion,
        "aopc_deletion_random": faith.aopc_deletion_random,
        "aopc_insertion_random": faith.aopc_insertion_random,
        "comprehensiveness": {str(q): v for q, v in faith.comprehensiveness.items()},
        "sufficiency": {str(q): v for q, v in faith.sufficiency.items()},
        "full": float(faith.deletion[0]),
        "empty": float(faith.insertion[0]),
        "eval_prompts": faith.n_prompts,
    }


def agreement(values: Any, exact: Any) -> dict[str, Any]:
    values, exact = np.asarray(values, dtype=float), np.asarray(exact, dtype=float)
    return {
        "spearman_exact": spearman(values, exact),
        "top1_exact": bool(np.argmax(values) == np.argmax(exact)),
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running


def load_models(args: argparse.Namespace) -> dict[str, Any]:
    path = args.model or pla.default_model_path()
    models = {"llama": pla.load_gguf(path, n_threads=args.threads)}
    if any(m.kind == "gradient" for m in args.methods):
        import torch

        torch.set_num_threads(args.threads)
        models["torch"] = pla.load_torch_gguf(path)
    return models


def meta(args: argparse.Namespace, models: dict[str, Any]) -> dict[str, Any]:
    from importlib import metadata

    return {
        "meta": True,
        "command": command_line("faithfulness"),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "model": Path(str(args.model or pla.default_model_path())).name,
        "pyllmattr": metadata.version("pyllmattr"),
        "sets": args.sets,
        "methods": [m.key for m in args.methods],
    }


def run(args: argparse.Namespace) -> int:
    models = load_models(args)
    # The first scoring call runs the exact layout's self-check: not in any timing.
    models["llama"].score([models["llama"].tokenize("Warm up.")], [13])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        out.write(json.dumps(meta(args, models)) + "\n")
        for name in args.sets:
            n = 2 if args.quick else args.inputs or INPUTS[name]
            budget = args.budget or (BUDGETS[name] // 2 if args.quick else BUDGETS[name])
            items = load_set(name, models["llama"], n)
            log(f"{name}: {len(items)} inputs, budget {budget}")
            for seed, item in enumerate(items):
                for row in run_item(item, seed, args.methods, models, budget):
                    out.write(json.dumps(row) + "\n")
                out.flush()
        out.write(json.dumps({"meta_end": True, "load_average": os.getloadavg()}) + "\n")
    log(f"appended to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        from harness.faithfulness_report import write_report

        return write_report(args.render or [args.out], args.markdown, args.plot)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
