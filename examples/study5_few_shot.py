"""Study 5, few-shot prompt evaluation: which in-context examples help?

The Captum LLM paper's second application. A sentiment prompt with six labelled
reviews (``examples/data/sentiment_few_shot.jsonl``: four sound ones, one labelled
wrong on purpose, one sarcastic) is completed for many query reviews; each example
is one feature (absent: removed), the query is fixed text. Feature ablation of the
correct label's log-probability, and of the margin over the wrong label (log p(correct)
- log p(wrong), ``contrast=``), for all queries in one ``attribute_batch`` call,
summarized with ``pla.summarize``: per example the mean, its standard error and the
share of queries it helps.

    python examples/study5_few_shot.py [--model PATH] [--quick] [--out FOLDER]

Runs on llama.cpp only (no torch needed).
"""

from __future__ import annotations

import numpy as np
import studykit as kit

import pyllmattr as pla

LABELS = ("positive", "negative")


def block(review: str, label: str | None = None) -> str:
    return f"Review: {review}\nSentiment:" + (f" {label}\n\n" if label else "")


def few_shot_input(instruction: dict, examples: list[dict], query: dict) -> pla.TextTemplateInput:
    """Each example a slot (removed when absent); the instruction and the query fixed."""
    slots = "".join("{" + e["id"] + "}" for e in examples)
    tail = block(query["review"]).replace("{", "{{").replace("}", "}}")
    head = instruction["text"].replace("{", "{{").replace("}", "}}")
    return pla.TextTemplateInput(
        f"{head}\n\n{slots}{tail}",
        values={e["id"]: block(e["review"], e["label"]) for e in examples},
    )


def accuracy(model, texts: list[str], queries: list[dict]) -> float:
    """Share of queries whose correct label scores above the wrong one after ``texts``."""
    right = 0
    for text, q in zip(texts, queries, strict=True):
        ids = model.tokenize(text)
        scores = {label: float(model.score([ids], " " + label)[0].sum()) for label in LABELS}
        right += scores[q["label"]] > max(v for k, v in scores.items() if k != q["label"])
    return right / len(queries)


def summary_table(summary, notes: dict[str, str]) -> str:
    # Features are the examples' texts, in slot order: e1, e2, ...
    rows = [
        [e, note, summary.mean[i], summary.stderr[i], summary.share_positive[i]]
        for i, (e, note) in enumerate(notes.items())
    ]
    return kit.table(["example", "what it is", "mean", "std. error", "share > 0"], rows)


def figure(report: kit.Report, summaries: dict, notes: dict[str, str]) -> str:
    plt = kit.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for ax, (name, s) in zip(axes, summaries.items(), strict=True):
        x = np.arange(len(notes))
        colors = np.where(s.mean >= 0, "#2166ac", "#b2182b")
        ax.bar(x, s.mean, yerr=1.96 * s.stderr, capsize=3, color=colors)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(
            x, [f"{e}\n{note.split(':')[0][:22]}" for e, note in notes.items()], fontsize=7
        )
        ax.set_ylabel("mean attribution (nats), 95% CI")
        ax.set_title(f"{name} over {s.n_inputs} queries", fontsize=10)
    return report.figure("examples", fig, "which in-context examples help (mean over queries)")


def main() -> None:
    args = kit.parse_args(__doc__.splitlines()[0])
    report = kit.Report("Study 5: few-shot prompt evaluation", args)
    data = kit.read_jsonl("sentiment_few_shot.jsonl")
    instruction = next(r for r in data if r["role"] == "instruction")
    examples = [r for r in data if r["role"] == "example"]
    queries = [r for r in data if r["role"] == "query"]
    if args.quick:
        queries = [queries[0], queries[2]]  # one of each label
    notes = {e["id"]: e["note"] for e in examples}
    inputs = [few_shot_input(instruction, examples, q) for q in queries]
    with kit.load_model(args) as model:
        report.section(
            "Setup",
            report.setup_text(
                kit.describe_model(model, kit.model_path(args)),
                f"- {len(examples)} in-context examples, {len(queries)} queries "
                "(examples/data/sentiment_few_shot.jsonl); FeatureAblation (absent example: "
                f"removed); scoring: {kit.layout_name(args)}",
            ),
        )
        method = pla.FeatureAblation(model)
        labels = [" " + q["label"] for q in queries]
        wrong = [" " + next(x for x in LABELS if x != q["label"]) for q in queries]
        # All queries in one batch: the instruction and example blocks they share are
        # decoded once. contrast= attributes log p(correct) - log p(wrong) directly.
        correct = method.attribute_batch(inputs, targets=labels, progress=False)
        margins = method.attribute_batch(inputs, targets=labels, contrasts=wrong, progress=False)
        full = [inp.render(np.ones(len(examples), dtype=bool), {})[0] for inp in inputs]
        zero = [f"{instruction['text']}\n\n{block(q['review'])}" for q in queries]
        acc = {
            "six examples": accuracy(model, full, queries),
            "none": accuracy(model, zero, queries),
        }
    summaries = {"log p(correct label)": pla.summarize(correct), "margin": pla.summarize(margins)}
    report.section(
        "Which examples help",
        "Attribution of log p(correct label):",
        summary_table(summaries["log p(correct label)"], notes),
        "Attribution of the margin log p(correct) - log p(wrong):",
        summary_table(summaries["margin"], notes),
        figure(report, summaries, notes),
    )
    by_label = {
        label: pla.summarize(
            [m for m, q in zip(margins, queries, strict=True) if q["label"] == label]
        )
        for label in LABELS
        if any(q["label"] == label for q in queries)
    }
    report.section(
        "By the query's label (margin)",
        kit.table(
            ["example", *(f"mean on {k} queries" for k in by_label)],
            [[f, *(s.mean[i] for s in by_label.values())] for i, f in enumerate(notes)],
        ),
        kit.table(
            ["prompt", "accuracy (correct label above the wrong one)"],
            [[k, v] for k, v in acc.items()],
        ),
    )
    m, ids = summaries["margin"], list(notes)
    best, worst = int(np.argmax(m.mean)), int(np.argmin(m.mean))
    report.section(
        "Findings",
        f"- Most helpful example (margin): {ids[best]} ({notes[ids[best]]}), "
        f"{m.mean[best]:+.3f} ± {m.stderr[best]:.3f} nats.",
        f"- Most harmful example (margin): {ids[worst]} ({notes[ids[worst]]}), "
        f"{m.mean[worst]:+.3f} ± {m.stderr[worst]:.3f} nats.",
        f"- Accuracy with all six examples {acc['six examples']:.2f}, with none {acc['none']:.2f}.",
    )
    report.summary = {
        "n_queries": len(queries),
        "accuracy": acc,
        **{
            name: {
                "features": s.features,
                "mean": s.mean,
                "stderr": s.stderr,
                "share_positive": s.share_positive,
            }
            for name, s in summaries.items()
        },
    }
    report.write()


if __name__ == "__main__":
    main()
