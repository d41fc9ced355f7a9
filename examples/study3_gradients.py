"""Study 3, perturbation vs gradients: do the two families agree on the same features?

The Captum LLM paper's second open question: embedding lookups are not
differentiable, so gradient methods attribute to embedding vectors, perturbation
methods to the presence of words. Over ``examples/data/gradient_prompts.jsonl``
(three template slots each, with same-token-length in-distribution baselines, and a
one-token target), every method attributes the same features of the same prompt:

- perturbation: FeatureAblation, ShapleyValueSampling (the slots' baselines);
- gradients: IntegratedGradients from the slots' baselines (the same path ends as
  feature ablation) and from token 0 (Captum's default baseline for token ids),
  Saliency (gradient norm, unsigned), InputXGradient.

Fair comparison: the gradient methods need PyTorch, which runs the GGUF's weights
dequantized to float32. The perturbation methods run on llama.cpp with an F16 copy
of the same weights (``requantize="f16"``), which scores like PyTorch float32 (about
0.002 nats per token apart), not on the Q4_1 file itself, whose kernels also quantize
activations (about 0.07 nats apart). Two controls measure what the back end alone
changes: feature ablation on the PyTorch model and on the Q4_1 file, each against
feature ablation on the F16 copy.

Needs the torch extra (``pip install "pyllmattr[torch]"``: torch, transformers, gguf)
for ``pla.load_torch_gguf``.

    python examples/study3_gradients.py [--model PATH] [--quick] [--out FOLDER]
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import studykit as kit

import pyllmattr as pla

METHODS = ("FA", "Shapley", "IG (slot baselines)", "IG (token 0)", "Saliency", "InputXGrad")


def aligned(model, inp) -> bool:
    """Integrated gradients from the slots' baselines needs a baseline prompt of the
    prompt's token length that differs only at feature tokens (true on SmolLM2 for every
    prompt of the data set; another tokenizer may split a baseline differently)."""
    enc = inp.encode(model)
    base = enc.render(np.zeros(enc.n_features, dtype=bool), None)
    in_feature = np.zeros(len(enc.reference_ids), dtype=bool)
    for positions in enc.feature_positions:
        in_feature[positions] = True
    if len(base) != len(enc.reference_ids):
        return False
    return not np.any((np.asarray(base) != np.asarray(enc.reference_ids)) & ~in_feature)


def run_prompt(models: dict, record: dict, opts: dict) -> dict:
    inp = pla.TextTemplateInput(record["template"], record["values"], baselines=record["baselines"])
    target = record["target"]
    f16, q41, tm = models["f16"], models["q4_1"], models["torch"]
    quiet = {"target": target, "progress": False}
    out: dict = {"id": record["id"], "attr": {}, "gap": {}, "change": {}}
    out["attr"]["FA"] = pla.FeatureAblation(f16).attribute(inp, **quiet).seq_attr
    out["attr"]["Shapley"] = (
        pla.ShapleyValueSampling(f16)
        .attribute(inp, n_samples=opts["n_samples"], seed=opts["seed"], **quiet)
        .seq_attr
    )
    for name, baselines in (("IG (slot baselines)", None), ("IG (token 0)", 0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the gap is reported below instead
            result = pla.IntegratedGradients(tm).attribute(
                inp, n_steps=opts["n_steps"], baselines=baselines, **quiet
            )
        out["attr"][name] = result.seq_attr
        out["gap"][name] = result.seq_completeness_gap
        out["change"][name] = result.target_logprob - result.baseline_logprob
    out["attr"]["Saliency"] = pla.Saliency(tm).attribute(inp, **quiet).seq_attr
    out["attr"]["InputXGrad"] = pla.InputXGradient(tm).attribute(inp, **quiet).seq_attr
    out["fa_torch"] = pla.FeatureAblation(tm).attribute(inp, **quiet).seq_attr
    out["fa_q4_1"] = pla.FeatureAblation(q41).attribute(inp, **quiet).seq_attr
    out["features"] = inp.labels
    return out


def pooled(rows: list[dict], key: str, transform=lambda x: x) -> np.ndarray:
    return np.concatenate(
        [transform(np.asarray(r["attr"][key] if key in r["attr"] else r[key])) for r in rows]
    )


def matrices(rows: list[dict]) -> dict:
    n = len(METHODS)
    out = {name: np.eye(n) for name in ("spearman_signed", "spearman_abs", "per_prompt", "top1")}
    for (i, a), (j, b) in itertools.combinations(enumerate(METHODS), 2):
        values = {
            "spearman_signed": kit.spearman(pooled(rows, a), pooled(rows, b)),
            "spearman_abs": kit.spearman(pooled(rows, a, np.abs), pooled(rows, b, np.abs)),
            "per_prompt": kit.mean_se([kit.spearman(r["attr"][a], r["attr"][b]) for r in rows])[0],
            "top1": float(
                np.mean([kit.top1(r["attr"][a]) == kit.top1(r["attr"][b]) for r in rows])
            ),
        }
        for name, v in values.items():
            out[name][i, j] = out[name][j, i] = v
    return out


def controls(rows: list[dict]) -> dict:
    fa = pooled(rows, "FA")
    out = {}
    for key in ("fa_torch", "fa_q4_1"):
        other = pooled(rows, key)
        out[key] = {
            "pearson_vs_f16": kit.pearson(fa, other),
            "max_abs_diff": float(np.max(np.abs(fa - other))),
            "top1_agreement": float(
                np.mean([kit.top1(r["attr"]["FA"]) == kit.top1(r[key]) for r in rows])
            ),
        }
    return out


def gaps(rows: list[dict]) -> dict:
    out = {}
    for name in ("IG (slot baselines)", "IG (token 0)"):
        gap = np.abs([r["gap"][name] for r in rows])
        change = np.abs([r["change"][name] for r in rows])
        out[name] = {
            "median_abs_gap": float(np.median(gap)),
            "max_abs_gap": float(np.max(gap)),
            "median_abs_change": float(np.median(change)),
            "share_gap_over_5pct": float(np.mean(gap > 0.05 * np.maximum(change, 1.0))),
            "gaps": gap,
        }
    return out


def heatmap(ax, matrix: np.ndarray, title: str, vmin: float) -> None:
    image = ax.imshow(matrix, vmin=vmin, vmax=1, cmap="viridis")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="w" if v < 0.5 else "k"
        )
    ax.set_xticks(range(len(METHODS)), METHODS, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(METHODS)), METHODS, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def figures(report: kit.Report, mats: dict, gap: dict, n: int) -> list[str]:
    plt = kit.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5), layout="constrained")
    heatmap(axes[0], mats["spearman_signed"], f"Spearman, signed (pooled, {n} prompts)", -1)
    heatmap(axes[1], mats["spearman_abs"], "Spearman of |attribution| (pooled)", -1)
    heatmap(axes[2], mats["top1"], "top-1 agreement (chance 1/3)", 0)
    shown = [report.figure("agreement", fig, "agreement between methods on the same features")]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    bins = np.logspace(-6, 2, 33)
    for name, g in gap.items():
        ax.hist(np.maximum(g["gaps"], 1e-6), bins=bins, alpha=0.6, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("|completeness gap| (nats): sum of attributions - (f(x) - f(baseline))")
    ax.set_ylabel("prompts")
    ax.legend(fontsize=8)
    shown.append(report.figure("ig_gaps", fig, "integrated gradients' completeness gaps"))
    return shown


def load_models(args) -> dict:
    import torch

    threads = kit.threads(args)
    if threads:
        torch.set_num_threads(threads)
    path = kit.model_path(args)
    return {
        "f16": kit.load_model(args, requantize="f16"),
        "q4_1": kit.load_model(args),
        "torch": pla.load_torch_gguf(path),
    }


def main() -> None:
    args = kit.parse_args(__doc__.splitlines()[0])
    report = kit.Report("Study 3: perturbation vs gradients", args)
    records = kit.read_jsonl("gradient_prompts.jsonl")
    opts = {"n_steps": 32, "n_samples": 25, "seed": args.seed}
    if args.quick:
        records, opts = records[:3], {**opts, "n_steps": 8, "n_samples": 5}
    models = load_models(args)
    usable = [
        r
        for r in records
        if aligned(
            models["torch"],
            pla.TextTemplateInput(r["template"], r["values"], baselines=r["baselines"]),
        )
    ]
    report.section(
        "Setup",
        report.setup_text(
            kit.describe_model(models["q4_1"], kit.model_path(args)),
            f"- {len(usable)} of {len(records)} prompts usable (same-length baselines) from "
            "examples/data/gradient_prompts.jsonl; perturbation methods on llama.cpp with an "
            'F16 copy (`requantize="f16"`), gradient methods on PyTorch float32 '
            f"(`pla.load_torch_gguf`); IG n_steps={opts['n_steps']} (Gauss-Legendre), "
            f"Shapley sampling n_samples={opts['n_samples']}",
        ),
    )
    rows = [run_prompt(models, r, opts) for r in kit.each(usable, "prompt")]
    for m in (models["f16"], models["q4_1"]):
        m.close()
    mats, ctrl, gap = matrices(rows), controls(rows), gaps(rows)
    shown = figures(report, mats, gap, len(rows))
    report.section(
        "Agreement between methods",
        "Spearman correlations pool every (prompt, feature) pair; top-1: share of prompts "
        "where two methods pick the same feature as most important (by |attribution|).",
        kit.table(
            ["method", *METHODS], [[a, *mats["spearman_signed"][i]] for i, a in enumerate(METHODS)]
        ),
        "Top-1 agreement:",
        kit.table(["method", *METHODS], [[a, *mats["top1"][i]] for i, a in enumerate(METHODS)]),
        shown[0],
    )
    report.section(
        "Back-end controls",
        "Feature ablation on the F16 llama.cpp copy against the same method on PyTorch "
        "float32 and on the Q4_1 file:",
        kit.table(
            ["compared with FA on F16", "Pearson", "max |difference| (nats)", "top-1 agreement"],
            [
                [k, v["pearson_vs_f16"], v["max_abs_diff"], v["top1_agreement"]]
                for k, v in ctrl.items()
            ],
        ),
    )
    report.section(
        "Integrated gradients' completeness",
        kit.table(
            [
                "baseline",
                "median |gap|",
                "max |gap|",
                "median |f(x) - f(x')|",
                "share with gap > 5 %",
            ],
            [
                [
                    k,
                    v["median_abs_gap"],
                    v["max_abs_gap"],
                    v["median_abs_change"],
                    v["share_gap_over_5pct"],
                ]
                for k, v in gap.items()
            ],
        ),
        shown[1],
    )
    i_fa, i_ig = METHODS.index("FA"), METHODS.index("IG (slot baselines)")
    report.section(
        "Findings",
        f"- Feature ablation vs IG from the same baselines: Spearman "
        f"{mats['spearman_signed'][i_fa, i_ig]:.2f}, top-1 agreement "
        f"{mats['top1'][i_fa, i_ig]:.2f}.",
        f"- Back end alone (FA, PyTorch vs F16 llama.cpp): Pearson "
        f"{ctrl['fa_torch']['pearson_vs_f16']:.4f}.",
    )
    report.summary = {
        "n_prompts": len(rows),
        "methods": list(METHODS),
        **{k: v for k, v in mats.items()},
        "controls": ctrl,
        "completeness": {k: {m: x for m, x in v.items() if m != "gaps"} for k, v in gap.items()},
    }
    report.write()


if __name__ == "__main__":
    main()
