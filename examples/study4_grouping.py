"""Study 4, grouping: correlated features grouped with ``mask=`` vs attributed apart.

The Captum LLM paper's third open question. A city and its state, or a name and the
pronoun that refers to it, carry overlapping information: removing one leaves the
other to say much the same, and swapping one alone can make the prompt contradict
itself. Over the prompts of ``examples/data/people_templates.jsonl``, each pair is
attributed once as one feature (``TextTemplateInput(..., mask=...)``) and once as two,
and the interaction is

    interaction = attribution(pair grouped) - (attribution(a) + attribution(b)).

For feature ablation it equals f(x - a) + f(x - b) - f(x - a - b) - f(x): positive when
the two are redundant (each alone is missed little, both together much), negative when
changing one alone hurts more than changing both (an inconsistent prompt). Feature
ablation and exact Shapley values, with in-distribution baselines (Sarah/Her for
Dave/His, Seattle/WA for Palm Coast/FL, ...); feature ablation also with removal.

    python examples/study4_grouping.py [--model PATH] [--quick] [--out FOLDER]

Runs on llama.cpp only (no torch needed).
"""

from __future__ import annotations

import numpy as np
import studykit as kit

import pyllmattr as pla

PAIRS = {"name + pronoun": ("name", "pronoun"), "city + state": ("city", "state")}
GROUPS = {"name": 0, "pronoun": 0, "city": 1, "state": 1, "job": 2}
SETTINGS = {
    "FA, in-distribution": (pla.FeatureAblation, "fixed"),
    "Shapley, in-distribution": (pla.ShapleyValues, "fixed"),
    "FA, removal": (pla.FeatureAblation, "removal"),
}


def fixed_baselines(record: dict) -> dict:
    """The first alternative of every slot group: Dave/His -> Sarah/Her, ..."""
    out = {}
    for key, options in record["alternatives"].items():
        first = options[0] if isinstance(options[0], list) else [options[0]]
        out.update(zip(key.split(","), first, strict=True))
    return out


def interactions(record: dict, model, n_target: int) -> dict:
    values, template = record["values"], record["template"]
    target = model.generate(model.tokenize(template.format(**values)), max_new_tokens=n_target)
    out = {"id": record["id"], "target": model.detokenize(target)}
    for setting, (method_cls, kind) in SETTINGS.items():
        baselines = fixed_baselines(record) if kind == "fixed" else None
        method = method_cls(model)
        apart = method.attribute(
            pla.TextTemplateInput(template, values, baselines=baselines),
            target=target,
            progress=False,
        )
        grouped = method.attribute(
            pla.TextTemplateInput(template, values, baselines=baselines, mask=GROUPS),
            target=target,
            progress=False,
        )
        keys = list(values)
        row = {}
        for pair, (a, b) in PAIRS.items():
            separate = apart.seq_attr[keys.index(a)] + apart.seq_attr[keys.index(b)]
            together = grouped.seq_attr[GROUPS[a]]
            row[pair] = {"grouped": together, "sum": separate, "interaction": together - separate}
        # Does grouping change which slot group looks most important?
        summed = [
            row["name + pronoun"]["sum"],
            row["city + state"]["sum"],
            apart.seq_attr[keys.index("job")],
        ]
        row["same_top1"] = kit.top1(summed) == kit.top1(grouped.seq_attr)
        row["noise_floor"] = apart.noise_floor
        out[setting] = row
    return out


def summarize(rows: list[dict]) -> dict:
    out = {}
    for setting in SETTINGS:
        entry = {"same_top1": float(np.mean([r[setting]["same_top1"] for r in rows]))}
        for pair in PAIRS:
            inter = np.array([r[setting][pair]["interaction"] for r in rows])
            grouped = np.array([r[setting][pair]["grouped"] for r in rows])
            mean, se = kit.mean_se(inter)
            entry[pair] = {
                "mean_interaction": mean,
                "se": se,
                "median_abs_interaction": float(np.median(np.abs(inter))),
                "median_abs_grouped": float(np.median(np.abs(grouped))),
                "share_positive": float(np.mean(inter > 0)),
                "share_interaction_over_half_grouped": float(
                    np.mean(np.abs(inter) > 0.5 * np.abs(grouped))
                ),
            }
        out[setting] = entry
    return out


def figure(report: kit.Report, rows: list[dict]) -> str:
    plt = kit.pyplot()
    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(15, 4.6), layout="constrained")
    for ax, setting in zip(axes, SETTINGS, strict=True):
        for pair, color in zip(PAIRS, ("#2166ac", "#d6604d"), strict=True):
            s = [r[setting][pair]["sum"] for r in rows]
            g = [r[setting][pair]["grouped"] for r in rows]
            ax.scatter(s, g, s=14, alpha=0.7, color=color, label=pair)
        lim = max(
            1e-3,
            *(
                abs(v)
                for r in rows
                for p in PAIRS
                for v in (r[setting][p]["sum"], r[setting][p]["grouped"])
            ),
        )
        ax.plot([-lim, lim], [-lim, lim], color="black", linewidth=0.8)
        ax.set_xlabel("sum of the two separate attributions (nats)")
        ax.set_ylabel("grouped attribution (nats)")
        ax.set_title(setting, fontsize=10)
        ax.legend(fontsize=8)
    return report.figure(
        "grouped_vs_sum",
        fig,
        "grouped attribution vs the sum of the parts (on the diagonal: no interaction)",
    )


def main() -> None:
    args = kit.parse_args(__doc__.splitlines()[0])
    report = kit.Report("Study 4: grouping correlated features", args)
    records = kit.read_jsonl("people_templates.jsonl")
    records, n_target = (records[:3], 3) if args.quick else (records, 6)
    with kit.load_model(args) as model:
        report.section(
            "Setup",
            report.setup_text(
                kit.describe_model(model, kit.model_path(args)),
                f"- {len(records)} prompts (examples/data/people_templates.jsonl), the model's "
                f"greedy {n_target}-token continuation; pairs grouped with "
                f"`mask={GROUPS}`; scoring: {kit.layout_name(args)}",
            ),
        )
        rows = [interactions(r, model, n_target) for r in kit.each(records, "prompt")]
    stats = summarize(rows)
    table_rows = [
        [
            setting,
            pair,
            f"{v['mean_interaction']:+.3f} ± {v['se']:.3f}",
            v["median_abs_interaction"],
            v["median_abs_grouped"],
            v["share_positive"],
            v["share_interaction_over_half_grouped"],
        ]
        for setting, entry in stats.items()
        for pair, v in entry.items()
        if pair in PAIRS
    ]
    report.section(
        "Interaction: grouped minus the sum of the parts",
        kit.table(
            [
                "setting",
                "pair",
                "mean ± se",
                "median |interaction|",
                "median |grouped|",
                "share > 0",
                "share |interaction| > |grouped|/2",
            ],
            table_rows,
        ),
        kit.table(
            ["setting", "grouping keeps the top slot group"],
            [[s, e["same_top1"]] for s, e in stats.items()],
        ),
        figure(report, rows),
    )
    ex = rows[0]
    report.section(
        "Example",
        f"Prompt {ex['id']}, target {ex['target']!r}:",
        kit.table(
            ["setting", "pair", "grouped", "sum of parts", "interaction"],
            [
                [s, p, ex[s][p]["grouped"], ex[s][p]["sum"], ex[s][p]["interaction"]]
                for s in SETTINGS
                for p in PAIRS
            ],
        ),
    )
    fa = stats["FA, in-distribution"]
    report.section(
        "Findings",
        *(
            f"- {pair} (FA, in-distribution baselines): mean interaction "
            f"{fa[pair]['mean_interaction']:+.3f} nats, positive in "
            f"{fa[pair]['share_positive']:.0%} of prompts."
            for pair in PAIRS
        ),
    )
    report.summary = {"n_prompts": len(rows), "interaction": stats}
    report.write()


if __name__ == "__main__":
    main()
