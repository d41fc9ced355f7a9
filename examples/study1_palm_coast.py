"""Study 1, Palm Coast: the Captum LLM paper's Figure 1, then with a baseline distribution.

Feature ablation of "Dave lives in Palm Coast, FL and is a lawyer. His personal
interests include" over its five template slots, first with one baseline per slot
(Sarah, Seattle, WA, doctor, Her, as in the paper), per target token; then with
``pla.ProductBaselines`` over several names, cities and states and jobs, repeated
``num_trials`` times, with the spread across sampled baselines (``seq_attr_std``).

    python examples/study1_palm_coast.py [--model PATH] [--quick] [--out FOLDER]

Runs on llama.cpp only (no torch needed).
"""

from __future__ import annotations

import numpy as np
import studykit as kit

import pyllmattr as pla

TEMPLATE = "{name} lives in {city}, {state} and is a {job}. {pronoun} personal interests include"
VALUES = {"name": "Dave", "city": "Palm Coast", "state": "FL", "job": "lawyer", "pronoun": "His"}
FIXED = {"name": "Sarah", "city": "Seattle", "state": "WA", "job": "doctor", "pronoun": "Her"}
# Every alternative differs from the prompt's value: a sampled baseline equal to the value
# would "remove" nothing and pull the feature's mean towards zero.
SAMPLED = pla.ProductBaselines(
    {
        ("name", "pronoun"): [
            ("Sarah", "Her"),
            ("Maria", "Her"),
            ("Alex", "Their"),
            ("Sam", "Their"),
        ],
        ("city", "state"): [
            ("Seattle", "WA"),
            ("Boston", "MA"),
            ("Austin", "TX"),
            ("Denver", "CO"),
            ("Portland", "OR"),
            ("Chicago", "IL"),
        ],
        "job": ["doctor", "teacher", "plumber", "nurse", "farmer"],
    }
)
# The continuation the paper explains; the model's own greedy continuation is explained too.
PAPER_TARGET = " playing golf, hiking, and cooking."


def fixed_baselines(model, report: kit.Report) -> dict:
    inp = pla.TextTemplateInput(TEMPLATE, values=VALUES, baselines=FIXED)
    method = pla.FeatureAblation(model)
    paper = method.attribute(inp, target=PAPER_TARGET, progress=False)
    own = method.attribute(inp, gen_args={"max_new_tokens": 10}, progress=False)
    figures = []
    for name, result in (("fixed_paper_target", paper), ("fixed_model_target", own)):
        fig, _ = result.plot_token_attr()
        figures.append(
            report.figure(name, fig, f"per-token feature ablation, target {result.target!r}")
        )
    rows = [
        [label, paper.seq_attr[i], own.seq_attr[i]] for i, label in enumerate(paper.input_features)
    ]
    report.section(
        "Fixed baselines (the paper's Figure 1)",
        f"Baselines: {', '.join(f'{k} -> {v}' for k, v in FIXED.items())}. "
        f"Targets: the paper's {PAPER_TARGET!r} (log p = {paper.target_logprob:.2f}) and the "
        f"model's greedy continuation {own.target!r} (log p = {own.target_logprob:.2f}).",
        kit.table(["feature", "paper target", "model's target"], rows),
        f"Noise floor (llama.cpp batch noise): {paper.noise_floor:.3f} and "
        f"{own.noise_floor:.3f} nats on the whole target.",
        *figures,
    )
    return {"paper": paper, "own": own}


def sampled_baselines(model, fixed: dict, trials: int, seed: int, report: kit.Report) -> dict:
    inp = pla.TextTemplateInput(TEMPLATE, values=VALUES, baselines=SAMPLED)
    result = pla.FeatureAblation(model).attribute(
        inp, target=PAPER_TARGET, num_trials=trials, seed=seed, progress=False
    )
    paper = fixed["paper"]
    mean, std = result.seq_attr, result.seq_attr_std
    rows = [
        [f, paper.seq_attr[i], mean[i], std[i], std[i] / abs(mean[i])]
        for i, f in enumerate(result.input_features)
    ]
    fig, ax = kit.pyplot().subplots(figsize=(7, 4), layout="constrained")
    x = np.arange(len(mean))
    ax.bar(x - 0.2, paper.seq_attr, 0.4, label="fixed baselines (Seattle, WA, ...)", color="0.6")
    ax.bar(x + 0.2, mean, 0.4, yerr=std, capsize=3, label=f"ProductBaselines, {trials} trials")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, result.input_features)
    ax.set_ylabel("attribution (log prob, nats)")
    ax.set_title(f"target {PAPER_TARGET!r}", fontsize=10)
    ax.legend(fontsize=8)
    bars = report.figure("sampled_vs_fixed", fig, "fixed vs sampled baselines (error bars: std)")
    heat_fig, _ = result.plot_token_attr()
    heat = report.figure("sampled_token_attr", heat_fig, "per-token mean over sampled baselines")
    rho = kit.spearman(paper.seq_attr, mean)
    flips = int(np.sum(np.sign(paper.seq_attr) != np.sign(mean)))
    report.section(
        "Sampled baselines (ProductBaselines)",
        "Alternatives: names with pronouns (Sarah/Maria with Her, Alex/Sam with Their), "
        f"six city-state pairs, five jobs; {trials} trials (`num_trials`), seed {seed}; "
        "every perturbed prompt samples its own baseline "
        f"({result.stats['n_unique']} distinct prompts scored).",
        kit.table(["feature", "fixed", "sampled mean", "sampled std", "std / |mean|"], rows),
        f"Spearman between fixed and sampled-mean attributions: {kit.fmt(rho)}; "
        f"features whose sign differs: {flips} of {len(mean)}.",
        bars,
        heat,
    )
    return {
        "features": result.input_features,
        "fixed_seq_attr": paper.seq_attr,
        "sampled_mean": mean,
        "sampled_std": std,
        "spearman_fixed_vs_sampled": rho,
        "sign_flips": flips,
        "n_unique_prompts": result.stats["n_unique"],
    }


def main() -> None:
    args = kit.parse_args(__doc__.splitlines()[0])
    report = kit.Report("Study 1: Palm Coast", args)
    trials = 3 if args.quick else 30
    with kit.load_model(args) as model:
        report.section("Setup", report.setup_text(kit.describe_model(model, kit.model_path(args))))
        fixed = fixed_baselines(model, report)
        report.summary["fixed"] = {
            "features": fixed["paper"].input_features,
            "paper_target_seq_attr": fixed["paper"].seq_attr,
            "model_target": fixed["own"].target,
            "model_target_seq_attr": fixed["own"].seq_attr,
            "noise_floor": fixed["paper"].noise_floor,
        }
        report.summary["sampled"] = sampled_baselines(model, fixed, trials, args.seed, report)
    s = report.summary["sampled"]
    relative = s["sampled_std"] / np.abs(s["sampled_mean"])
    report.summary["median_std_over_abs_mean"] = float(np.median(relative))
    report.section(
        "Findings",
        f"- Largest attribution with fixed baselines: "
        f"{fixed['paper'].top_features(1)[0][0]!r}; with sampled baselines: "
        f"{s['features'][kit.top1(s['sampled_mean'])]!r}.",
        f"- Across sampled baselines the median feature's standard deviation is "
        f"{np.median(relative):.2f} times its mean attribution (above 1: the choice of "
        "baseline moves a feature's attribution by more than its average size).",
    )
    report.write()


if __name__ == "__main__":
    main()
