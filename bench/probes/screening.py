"""Screened Shapley value sampling against plain sampling and exact Shapley values.

For a few templates on SmolLM2 (the default exact layout), at the same n_samples:
prompts scored by screened sampling over prompts scored by plain sampling, and the
largest |difference| from the exact Shapley values (mean over seeds) of both.

    python bench screening                  # 5 inputs, 5 seeds, n_samples 10
    python bench screening --quick          # 2 templates, 2 seeds
    python bench screening --tol 0.05 0.2   # several tolerances
    python bench screening --cases 4        # the ten-word sentence only
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import pyllmattr as pla

TEMPLATES = [
    (
        "{} lives in {}, {} and is a {}. His {} include {} and",
        ["Dave", "Palm Coast", "FL", "lawyer", "interests", "golf"],
        ["Sarah", "Seattle", "WA", "doctor", "hobbies", "chess"],
        " reading",
    ),
    (
        "The {} of {} is {}, a city on the {} known for its {} and",
        ["capital", "France", "Paris", "Seine", "museums"],
        ["name", "Spain", "Madrid", "coast", "beaches"],
        " cafes",
    ),
    (
        "{} met {} in {} in {}; {} gave {} a",
        ["Alice", "Bob", "Rome", "May", "she", "him"],
        ["Carol", "Dan", "Oslo", "June", "he", "her"],
        " book",
    ),
    (
        "Q: What is {} plus {}? A: {} plus {} is",
        ["two", "three", "two", "three"],
        ["four", "five", "four", "five"],
        " five",
    ),
    # Ten word features, removed when absent: most words barely matter.
    ("Yesterday the old man in the small village bought fresh", None, None, " bread"),
]


def measure(model, template, values, baselines, target, n_samples, seeds, tol):
    if values is None:
        inp = pla.TextTemplateInput.from_text(template, by="word")
    else:
        inp = pla.TextTemplateInput(template, values, baselines=baselines)
    exact = pla.ShapleyValues(model).attribute(inp, target=target, noise_floor=False).seq_attr
    rows = {"plain": [], "screened": []}
    prompts = {"plain": [], "screened": []}
    screened = []
    for seed in seeds:
        for name, options in (("plain", {}), ("screened", {"screen": True, "screen_tol": tol})):
            result = pla.ShapleyValueSampling(model).attribute(
                inp, target=target, n_samples=n_samples, seed=seed, noise_floor=False, **options
            )
            rows[name].append(np.abs(result.seq_attr - exact).max())
            prompts[name].append(result.stats["n_evaluations"])
            if name == "screened":
                screened.append(sum(result.screened))
    return {
        "template": template,
        "n_features": len(exact),
        "tol": tol,
        "n_samples": n_samples,
        "screened_mean": float(np.mean(screened)),
        "prompt_ratio": float(np.mean(prompts["screened"]) / np.mean(prompts["plain"])),
        "maxdiff_plain": float(np.mean(rows["plain"])),
        "maxdiff_screened": float(np.mean(rows["screened"])),
        "exact_max_abs": float(np.abs(exact).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-samples", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tol", type=float, nargs="+", default=[0.1])
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--cases", type=int, nargs="+", help="which templates (0-based)")
    args = parser.parse_args()
    templates = TEMPLATES[:2] if args.quick else TEMPLATES
    if args.cases:
        templates = [TEMPLATES[i] for i in args.cases]
    seeds = range(2 if args.quick else args.seeds)
    rows = []
    with pla.load_gguf(pla.default_model_path(), n_threads=2) as model:
        for tol in args.tol:
            for case in templates:
                row = measure(model, *case, args.n_samples, seeds, tol)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("| template | features | tol | screened (mean) | prompts screened / plain "
          "| max abs diff plain | max abs diff screened | max abs exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['template'][:28]}… | {r['n_features']} | {r['tol']} | {r['screened_mean']:.1f} "
            f"| {r['prompt_ratio']:.2f} | {r['maxdiff_plain']:.3f} | {r['maxdiff_screened']:.3f} "
            f"| {r['exact_max_abs']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
