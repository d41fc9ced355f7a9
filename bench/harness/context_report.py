"""Summarize ``python bench context_attribution``'s JSON lines as a markdown table."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.context_attribution import ORDER, metrics

LABELS = {
    "exact-loo": "exact LOO, each prompt alone (reference)",
    "pla-loo": "pyllmattr FeatureAblation (prefix-shared LOO; on the exact layout: the reference)",
    "hierarchical-k2": "HierarchicalAblation document→sentence, keep=2 (unrefined split)",
    "hierarchical-k2-alone2": "the same, keep_alone=2 (also the 2 best documents on their own)",
    "hierarchical-k2-copy": "the same run, unrefined values copied (the old default)",
    "hierarchical-k2-3lv": "HierarchicalAblation document→paragraph→sentence, keep=2",
    "hierarchical-k2-proxy": "HierarchicalAblation doc→sentence keep=2, Q4_0 proxy",
    "context-cite-32": "pyllmattr ContextCite, 32 masks",
    "context-cite-64": "pyllmattr ContextCite, 64 masks",
    "context-cite-128": "pyllmattr ContextCite, 128 masks",
    "context-cite-64-proxy": "ContextCite 64 masks on a Q4_0 proxy, target rescores 5",
    "loo-proxy-k5": "FeatureAblation on a Q4_0 proxy, target rescores 5",
    "captum-1pass": "Captum 0.9 FeatureAblation, single pass (fp32 PyTorch)",
    "context-cite-64-f16": "pyllmattr ContextCite, 64 masks, F16 copy (requantize='f16')",
    "hierarchical-k2-f16": "HierarchicalAblation keep=2 on the F16 copy (requantize='f16')",
    "cc-package-32": "context-cite 0.0.4 package, 32 ablations (fp32 PyTorch)",
    "cc-package-64": "context-cite 0.0.4 package, 64 ablations (fp32 PyTorch)",
}


def load(paths: list[Path]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    drops: dict[str, dict[str, float]] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "top3_drop" in record:
                drops.setdefault(record["case"], {}).update(record["top3_drop"])
            else:
                rows[record["case"]][record["method"]] = record
    return rows, drops


def render(paths: list[Path]) -> str:
    rows, drops = load(paths)
    cases = [c for c in rows if reference_of(rows[c])]
    per_method: dict[str, list[dict[str, float]]] = defaultdict(list)
    for case in cases:
        base = rows[case][reference_of(rows[case])]
        reference = np.asarray(base["values"])
        for name, row in rows[case].items():
            m = metrics(row["values"], reference)
            m.update(seconds=row["seconds"], decoded=row["decoded"], evals=row["evaluations"])
            m["support_top1"] = float(int(np.argmax(row["values"])) in base["support"])
            for peer in ("pla-loo", "captum-1pass", "cc-package-64"):
                if peer in rows[case]:
                    m[f"vs {peer}"] = rows[case][peer]["seconds"] / row["seconds"]
            if case in drops and name in drops[case]:
                m["drop"] = drops[case][name]
            per_method[name].append(m)
    header = [
        "method",
        "cases",
        "mean s",
        "mean decoded",
        "evals",
        "× faster than pla LOO",
        "× faster than Captum 1-pass",
        "× faster than context-cite 64",
        "top-1",
        "top-3",
        "Spearman",
        "top-3 drop (nats)",
        "top-1 is a support sentence",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in [n for n in ORDER if n in per_method]:
        ms = per_method[name]
        lines.append(
            "| "
            + " | ".join(
                [
                    LABELS.get(name, name),
                    str(len(ms)),
                    _mean(ms, "seconds", "{:.1f}"),
                    _mean(ms, "decoded", "{:.0f}"),
                    _mean(ms, "evals", "{:.0f}"),
                    _median(ms, "vs pla-loo"),
                    _median(ms, "vs captum-1pass"),
                    _median(ms, "vs cc-package-64"),
                    _mean(ms, "top1", "{:.2f}"),
                    _mean(ms, "top3", "{:.2f}"),
                    _mean(ms, "spearman", "{:.2f}"),
                    _mean(ms, "drop", "{:.2f}"),
                    _mean(ms, "support_top1", "{:.2f}"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def reference_of(methods: dict[str, Any]) -> str | None:
    """The exact sentence-level leave-one-out of a case: each prompt scored alone, or
    prefix-shared on the exact layout, whose scores equal those (docs/numerics.md)."""
    if "exact-loo" in methods:
        return "exact-loo"
    if methods.get("pla-loo", {}).get("layout") == "exact":
        return "pla-loo"
    return None


def identity_lines(paths: list[Path]) -> list[str]:
    """Where a case has both references: the largest difference between them."""
    rows, _ = load(paths)
    out = []
    for case, methods in rows.items():
        a, b = methods.get("exact-loo"), methods.get("pla-loo")
        if a and b and b.get("layout") == "exact":
            delta = np.max(np.abs(np.subtract(a["values"], b["values"])))
            out.append(
                f"{case}: prefix-shared LOO on the exact layout against each prompt alone, "
                f"largest |difference| {delta:.3g} nats over {len(a['values'])} sentences."
            )
    return out


def _mean(ms: list[dict[str, float]], key: str, fmt: str) -> str:
    values = [m[key] for m in ms if key in m and np.isfinite(m[key])]
    return fmt.format(np.mean(values)) if values else "–"


def _median(ms: list[dict[str, float]], key: str) -> str:
    values = [m[key] for m in ms if key in m]
    return f"{np.median(values):.2f}x" if values else "–"
