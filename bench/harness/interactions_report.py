"""Summarize ``python bench interactions``'s JSON: the peers, SPEX and grouping tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

PAIRS = {"name + pronoun": ("name", "pronoun"), "city + state": ("city", "state")}
GROUP_OF = {"name": 0, "pronoun": 0, "city": 1, "state": 1, "job": 2}


def key_of(record: dict) -> tuple[Any, ...]:
    return (
        record["part"], record.get("words"), record.get("approximator"), record.get("budget"),
        record.get("id"), record.get("threads"),
    )  # fmt: skip


def load(paths: list[Path]) -> tuple[list[dict], dict[str, list[dict]]]:
    """The meta of every run that still has records, and the records of each part; a
    later run's record replaces an earlier one's for the same prompt, estimator and
    budget."""
    metas, records = [], {}
    for path in paths:
        for run in json.loads(path.read_text(encoding="utf-8"))["runs"]:
            metas.append(run["meta"])
            for r in run["records"]:
                if r["part"] == "peers":  # peers at 1 and 2 threads are rows of their own
                    r.setdefault("threads", run["meta"]["threads"])
                records[key_of(r)] = (r, len(metas) - 1)
    parts: dict[str, list[dict]] = {}
    for record, _ in records.values():
        parts.setdefault(record["part"], []).append(record)
    used = sorted({run for _, run in records.values()})
    return [metas[i] for i in used], parts


def runs_text(metas: list[dict]) -> list[str]:
    lines = []
    for m in metas:
        seconds = ", ".join(
            f"{k.removesuffix('_seconds')} {v / 60:.1f} min"
            for k, v in m.items()
            if k.endswith("_seconds") and k != "torch_load_seconds"
        )
        lines.append(
            f"- `{m['command']}`: {m['started']}, {m['model']}, {m['threads']} thread(s) for "
            f"llama.cpp and PyTorch, {m['cpus']} cores, load average {m['load_average'][0]:.1f} "
            f"at the start, {m['load_average_end'][0]:.1f} at the end; {seconds}; "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        )
    return lines


def peers_table(records: list[dict]) -> list[str]:
    header = [
        "words", "threads", "budget", "pla s (exact layout)", "pla s (fast layout)",
        "shapiq + PyTorch s",
        "PyTorch ÷ pla (exact / fast)", "CPU s: pla exact / fast / PyTorch",
        "prompts: pla / PyTorch", "tokens: pla / PyTorch", "pairs r, PyTorch vs pla",
        "top-5 pairs shared", "vs exact, pairs r / top-5: pla, fast, PyTorch",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for r in sorted(records, key=lambda r: (r["threads"], r["words"])):
        pla, fast, peer, both = r["pla"], r["fast"], r["peer"], r["peer_vs_pla"]
        exact = ", ".join(_vs(r.get(f"{who}_vs_exact")) for who in ("pla", "fast", "peer"))
        how = " (exact)" if pla["exact"] else ""
        lines.append(
            f"| {r['words']} | {r['threads']} | {r['budget']}{how} | {_times(pla)} | "
            f"{_times(fast)} | "
            f"{_times(peer)} | {peer['seconds'] / pla['seconds']:.2f} / "
            f"{peer['seconds'] / fast['seconds']:.2f} | {pla['cpu_seconds']:.1f} / "
            f"{fast['cpu_seconds']:.1f} / {peer['cpu_seconds']:.1f} | {pla['prompts']} / "
            f"{peer['prompts']} | {pla['decoded']} / {peer['decoded']} | "
            f"{both['pairs_pearson']:.3f} | {both['top_pairs_overlap'] * 5:.0f} of 5 | {exact} |"
        )
    return lines


def _times(side: dict) -> str:
    """The median, with every run's time when there were several."""
    runs = side.get("runs_seconds", [side["seconds"]])
    if len(runs) == 1:
        return f"{side['seconds']:.1f}"
    return f"{side['seconds']:.1f} ({', '.join(f'{t:.0f}' for t in runs)})"


def _vs(a: dict | None) -> str:
    if not a:
        return "—"
    return f"{a['pairs_pearson']:.3f} / {a['top_pairs_overlap'] * 5:.0f}"


def spex_table(records: list[dict]) -> list[str]:
    header = [
        "words", "estimator", "budget", "prompts", "decoded tokens", "wall s", "engine s",
        "estimator s", "vs exact: pairs Spearman / top-5", "top pairs found",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * (len(header) - 1) + "---|"]
    for r in sorted(records, key=lambda r: (r["words"], r["budget"], r["approximator"])):
        res = r["result"]
        vs = r.get("vs_exact")
        agree = (
            f"{vs['pairs_spearman']:.2f} / {vs['top_pairs_overlap'] * 5:.0f} of 5" if vs else "—"
        )
        top = "; ".join(f"{' × '.join(p)} {v:+.2f}" for p, v in r["top"][:3])
        lines.append(
            f"| {r['words']} | {res['approximator']} | {r['budget']} | {res['prompts']} | "
            f"{res['decoded']} | {res['seconds']:.1f} | {res['engine_seconds']:.1f} | "
            f"{res['seconds'] - res['engine_seconds']:.1f} | {agree} | {top} |"
        )
    return lines


def grouping_stats(records: list[dict]) -> dict[str, dict[str, Any]]:
    """Per pair: the pair's SII against its members' Shapley values, and the grouped
    Shapley value against the sum of the members'."""
    out: dict[str, dict[str, Any]] = {}
    for name, (a, b) in PAIRS.items():
        inter, mains, gaps, sums, redundant = [], [], [], [], []
        for r in records:
            i, j = sorted((r["keys"].index(a), r["keys"].index(b)))
            phi = r["interactions"]
            pair, pa, pb = phi[f"{i},{j}"], phi[str(i)], phi[str(j)]
            inter.append(pair)
            mains.append(abs(pa) + abs(pb))
            sums.append(pa + pb)
            gaps.append(r["grouped"][GROUP_OF[a]] - (pa + pb))
            redundant.append(np.sign(pair) == -np.sign(pa + pb))
        inter_a, mains_a, gaps_a = np.abs(inter), np.asarray(mains), np.abs(gaps)
        out[name] = {
            "n": len(records),
            "mean": float(np.mean(inter)),
            "se": float(np.std(inter, ddof=1) / np.sqrt(len(inter))),
            "median_abs": float(np.median(inter_a)),
            "median_mains": float(np.median(mains_a)),
            "median_ratio": float(np.median(inter_a / np.maximum(mains_a, 1e-12))),
            "share_over_half": float(np.mean(inter_a > 0.5 * mains_a)),
            "share_redundant": float(np.mean(redundant)),
            "median_gap": float(np.median(gaps_a)),
            "max_gap": float(np.max(gaps_a)),
            "gap_vs_pair_r": float(np.corrcoef(gaps_a, inter_a)[0, 1]),
            "median_abs_sum": float(np.median(np.abs(sums))),
        }
    out["top"] = {"same_top": top_kept(records)}
    return out


def top_kept(records: list[dict]) -> float:
    """Share of templates where grouping keeps the most important slot group."""
    kept = []
    for r in records:
        phi, keys = r["interactions"], r["keys"]
        summed = np.zeros(3)
        for k, key in enumerate(keys):
            summed[GROUP_OF[key]] += phi[str(k)]
        kept.append(int(np.argmax(summed)) == int(np.argmax(r["grouped"])))
    return float(np.mean(kept))


def grouping_table(records: list[dict]) -> list[str]:
    stats = grouping_stats(records)
    header = [
        "pair", "templates", "SII of the pair, mean ± se", "median abs(SII)",
        "median abs(φa) + abs(φb)", "median ratio", "abs(SII) > half of it",
        "redundant (sign against φa + φb)", "grouping gap abs(grouped − (φa + φb)): median / max",
        "r(gap, abs(SII))",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name in PAIRS:
        s = stats[name]
        lines.append(
            f"| {name} | {s['n']} | {s['mean']:+.3f} ± {s['se']:.3f} | {s['median_abs']:.3f} | "
            f"{s['median_mains']:.3f} | {s['median_ratio']:.2f} | "
            f"{100 * s['share_over_half']:.0f} % | {100 * s['share_redundant']:.0f} % | "
            f"{s['median_gap']:.3f} / {s['max_gap']:.3f} "
            f"| {s['gap_vs_pair_r']:.2f} |"
        )
    lines += ["", f"Grouping keeps the most important slot group in "
              f"{100 * stats['top']['same_top']:.0f} % of the templates."]  # fmt: skip
    return lines


def render(paths: list[Path]) -> str:
    metas, parts = load(paths)
    out = ["<!-- interactions -->",
           "### Shapley interactions: the engine against shapiq on PyTorch "
           "(`bench/harness/interactions.py`)", ""]  # fmt: skip
    out += runs_text(metas) + [""]
    if "peers" in parts:
        out += [
            "#### k-SII of order 2, same estimator and budget",
            "",
            *peers_table(parts["peers"]),
            "",
        ]
    if "spex" in parts:
        out += ["#### SPEX and ProxySPEX", "", *spex_table(parts["spex"]), ""]
    if "grouping" in parts:
        out += [
            "#### Grouping (study 4's pairs), exact SII",
            "",
            *grouping_table(parts["grouping"]),
            "",
        ]
    out.append("<!-- /interactions -->")
    return "\n".join(out) + "\n"


def write_report(paths: list[Path], markdown: Path) -> int:
    markdown.write_text(render(paths), encoding="utf-8")
    print(f"wrote {markdown}")
    return 0
