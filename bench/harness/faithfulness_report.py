"""Summarize ``python bench faithfulness``'s JSON lines: tables per set and the cost figure."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness import REPO
from harness.faithfulness import BY_KEY, METHODS

SET_TITLES = {
    "people": "People templates (5 slots, same-length in-distribution baselines, greedy "
    "4-token target)",
    "few-shot": "Few-shot (8 examples removed when absent, target the capital)",
    "context": "Context QA (12 sentences of 4 documents, removed when absent, target the answer)",
}
Q = "0.2"
REFERENCE_NAMES = {
    "shapley-exact": "exact Shapley",
    "feature-ablation": "leave-one-out",
}  # the fraction at which comprehensiveness and sufficiency are shown


def load(paths: list[Path]) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], dict]]:
    """The meta lines of the runs whose rows are shown, and the last row of every (set,
    input, method); an input's evaluation row is named after the kinds of methods its
    run evaluated (``_evaluation:perturbation``, ``_evaluation:gradient``)."""
    metas, rows, run_of = [], {}, {}
    for path in paths:
        kinds = "perturbation"
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("meta"):
                metas.append(record)
                kinds = "+".join(sorted({BY_KEY[k].kind for k in record["methods"]}))
            elif record.get("meta_end"):
                metas[-1]["load_average_end"] = record["load_average"]
            else:
                if record["method"] == "_evaluation":
                    record = {**record, "method": f"_evaluation:{kinds}"}
                key = (record["set"], record["id"], record["method"])
                rows[key], run_of[key] = record, len(metas) - 1
    return [metas[i] for i in sorted(set(run_of.values()))], rows


def mean_se(values: list[float]) -> tuple[float, float]:
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not len(x):
        return float("nan"), float("nan")
    se = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return float(x.mean()), se


def summarize(rows: dict[tuple[str, str, str], dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per set and method: means over inputs (medians for seconds)."""
    grouped: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for (set_, _, method), row in rows.items():
        grouped[set_][method].append(row)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for set_, methods in grouped.items():
        out[set_] = {}
        reference = {r["id"]: r["lds"] for r in methods.get(reference_of(methods), [])}
        for method, items in methods.items():
            out[set_][method] = summary(method, items)
            if not method.startswith("_evaluation"):
                paired = [r["lds"] - reference[r["id"]] for r in items if r["id"] in reference]
                out[set_][method]["lds_paired"] = mean_se(paired)
    return out


def reference_of(methods: dict[str, Any]) -> str:
    """Exact Shapley values where the set has them, else leave-one-out."""
    return "shapley-exact" if "shapley-exact" in methods else "feature-ablation"


def summary(method: str, items: list[dict]) -> dict[str, Any]:
    def col(name: str) -> list[Any]:
        return [r.get(name) for r in items]

    if method.startswith("_evaluation"):
        return {
            "n": len(items),
            "prompts": float(np.mean(col("prompts"))),
            "decoded": float(np.mean(col("decoded"))),
            "seconds": float(np.median(col("seconds"))),
            "cpu_seconds": float(np.median(col("cpu_seconds"))),
            "calls": sorted(set(col("n_score_calls"))),
        }
    s: dict[str, Any] = {"n": len(items)}
    for name in ("lds", "aopc_deletion", "aopc_insertion", "aopc_deletion_random",
                 "aopc_insertion_random", "spearman_exact"):  # fmt: skip
        s[name] = mean_se(col(name))
    s["comp"] = mean_se([r["comprehensiveness"][Q] for r in items])
    s["suff"] = mean_se([r["sufficiency"][Q] for r in items])
    top1 = [r["top1_exact"] for r in items if "top1_exact" in r]
    s["top1_exact"] = float(np.mean(top1)) if top1 else None
    s["prompts"] = float(np.mean(col("prompts")))
    decoded = [d for d in col("decoded") if d is not None]
    s["decoded"] = float(np.mean(decoded)) if decoded else None
    s["seconds"] = float(np.median(col("seconds")))
    s["cpu_seconds"] = float(np.median(col("cpu_seconds")))
    s["kind"] = items[0].get("kind")
    return s


def fmt(pair: tuple[float, float], digits: int = 2) -> str:
    mean, se = pair
    if not np.isfinite(mean):
        return "—"
    return f"{mean:+.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:+.{digits}f}"


def table(set_: str, methods: dict[str, dict[str, Any]]) -> list[str]:
    header = [
        "method", "inputs", "LDS", f"LDS − {REFERENCE_NAMES[reference_of(methods)]}'s (paired)",
        "AOPC deletion ↑", "AOPC insertion ↓",
        f"comp. {int(float(Q) * 100)} % ↑", f"suff. {int(float(Q) * 100)} % ↓",
        "Spearman vs exact Shapley", "top-1 = exact", "prompts", "tokens",
        "s (median)", "CPU s (median)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    chance = None
    for m in METHODS:
        s = methods.get(m.key)
        if s is None:
            continue
        chance = chance or (s["aopc_deletion_random"], s["aopc_insertion_random"])
        spear = "—" if not np.isfinite(s["spearman_exact"][0]) else fmt(s["spearman_exact"])
        top1 = "—" if s["top1_exact"] is None else f"{100 * s['top1_exact']:.0f} %"
        tokens = "—" if s["decoded"] is None else f"{s['decoded']:.0f}"
        if m.kind == "gradient":
            tokens += " (PyTorch)"
        lines.append(
            f"| {m.label} | {s['n']} | {fmt(s['lds'])} | {fmt(s['lds_paired'])} | "
            f"{fmt(s['aopc_deletion'])} | "
            f"{fmt(s['aopc_insertion'])} | {fmt(s['comp'])} | {fmt(s['suff'])} | {spear} | "
            f"{top1} | {s['prompts']:.0f} | {tokens} | {s['seconds']:.2f} | "
            f"{s['cpu_seconds']:.2f} |"
        )
    if chance:
        lines.append(
            f"| random orders (chance) | | 0 | | {fmt(chance[0])} | {fmt(chance[1])} |" + " |" * 8
        )
    for key, ev in methods.items():
        if key.startswith("_evaluation"):
            kinds = key.split(":")[1].replace("+", " and ")
            lines.append(
                f"| *pla.evaluate of an input's {kinds} results, one call* | {ev['n']} |"
                + " |" * 8
                + f" {ev['prompts']:.0f} | {ev['decoded']:.0f} | {ev['seconds']:.2f} | "
                f"{ev['cpu_seconds']:.2f} |"
            )
    return lines


def runs_text(metas: list[dict[str, Any]]) -> list[str]:
    lines = []
    for m in metas:
        end = m.get("load_average_end")
        load = f"load average {m['load_average'][0]:.1f} at the start" + (
            f", {end[0]:.1f} at the end" if end else ""
        )
        lines.append(
            f"- `{m['command']}`: {m['started']}, {m['model']}, {m['threads']} thread(s), "
            f"{m['cpus']} cores, pyllmattr {m['pyllmattr']}, {load}"
        )
    return lines


def render(paths: list[Path], plot_link: str | None) -> str:
    metas, rows = load(paths)
    stats = summarize(rows)
    out = ["<!-- faithfulness -->",
           "### Which attribution to believe: faithfulness against cost "
           "(`bench/harness/faithfulness.py`)", ""]  # fmt: skip
    out += runs_text(metas) + [""]
    for set_ in SET_TITLES:
        if set_ in stats:
            out += [f"#### {SET_TITLES[set_]}", "", *table(set_, stats[set_]), ""]
    if plot_link:
        out += [f"![faithfulness against cost]({plot_link})", ""]
    out.append("<!-- /faithfulness -->")
    return "\n".join(out) + "\n"


def plot(paths: list[Path], target: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    stats = summarize(load(paths)[1])
    sets = [s for s in SET_TITLES if s in stats]
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4.2), layout="constrained")
    axes = np.atleast_1d(axes)
    keys = [m.key for m in METHODS]
    markers = dict(zip(keys, "osD^v<>pP*Xh", strict=False))
    colors = {k: plt.get_cmap("tab20")(i / max(len(keys) - 1, 1)) for i, k in enumerate(keys)}
    for ax, set_ in zip(axes, sets, strict=True):
        for key, s in stats[set_].items():
            if key.startswith("_evaluation"):
                continue
            mean, se = s["lds"]
            ax.errorbar(s["cpu_seconds"], mean, yerr=se if np.isfinite(se) else None,
                        marker=markers.get(key, "o"), color=colors.get(key), linestyle="",
                        capsize=2,
                        label=BY_KEY[key].label.split(" (")[0])  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("CPU seconds per input (median)")
        ax.set_ylabel("LDS (mean ± se over inputs)")
        ax.set_title(set_, fontsize=10)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.legend(fontsize=7)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    return True


def write_report(paths: list[Path], markdown: Path, figure: Path) -> int:
    link = None
    if plot(paths, figure):  # linked from BENCHMARKS.md, at the repository's root
        link = os.path.relpath(figure.resolve(), REPO)
    markdown.write_text(render(paths, link), encoding="utf-8")
    print(f"wrote {markdown}" + (f" and {figure}" if link else ""))
    return 0
