"""Study 6, which passage answered: passage and sentence attribution over several documents.

Each item of ``examples/data/retrieval_documents.jsonl`` holds four short invented
documents (the model cannot know the answers from pretraining), a question that one
sentence answers, and distractors of the same shape (another town founded in another
year, another captain, ...). The gold document is moved to position ``i mod 4`` of
item i, so every position holds the answer equally often. The prompt lists the
documents, each headed "Document k:", and asks the question. The gold answer's
log-probability is attributed

- to each document and
- to each sentence of the documents (a document's header belongs to its first
  sentence), with feature ablation on a ``pla.ContextInput``, absent units removed,
- and to each sentence with ``pla.HierarchicalAblation`` (the documents, then the
  sentences of the strongest one), compared with the full sentence leave-one-out.

The instruction and the question are fixed text. Does the top feature hold the
answer, and how much does the answer's log-probability drop without it?

    python examples/study6_retrieval.py [--model PATH] [--quick] [--out FOLDER]

Runs on llama.cpp only (no torch needed).
"""

from __future__ import annotations

import numpy as np
import studykit as kit

import pyllmattr as pla

INSTRUCTION = "Answer the question using the documents below."
N_ANSWER = 12  # tokens of the model's own greedy answer
KEEP = 1  # documents HierarchicalAblation refines (one holds the answer)


TEMPLATE = INSTRUCTION + "\n\n{context}\n\nQuestion: {query}\nAnswer:"


def gold_first_at(item: dict, position: int) -> tuple[list[str], int]:
    """The documents with the gold one moved to ``position`` (distractors keep their order)."""
    docs = item["documents"]
    gold = next(k for k, d in enumerate(docs) if item["evidence"] in d)
    others = [d for k, d in enumerate(docs) if k != gold]
    return others[:position] + [docs[gold]] + others[position:], position


def key_word(answer: str) -> str:
    """The answer's first word that is not an article ("a black bear" -> "black"): the
    model's free-form answer counts as right when it contains it."""
    words = answer.lower().split()
    return next((w for w in words if w not in {"a", "an", "the", "every"}), words[0])


def rank_of(values: np.ndarray, index: int) -> int:
    """1 when ``values[index]`` is the largest; ties count against it."""
    return int(np.sum(values >= values[index]))


def run_item(model, item: dict, position: int) -> dict:
    docs, gold_doc = gold_first_at(item, position)
    headed = [f"Document {k + 1}: {doc}" for k, doc in enumerate(docs)]
    sentence_input = pla.ContextInput(headed, item["question"], template=TEMPLATE)
    doc_input = sentence_input.at("document")
    ablation = pla.FeatureAblation(model)
    doc_fa = ablation.attribute(doc_input, target=item["answer"], progress=False)
    sent = ablation.attribute(sentence_input, target=item["answer"], progress=False)
    hier = pla.HierarchicalAblation(model).attribute(
        sentence_input, target=item["answer"], levels=("document", "sentence"), keep=KEEP,
        progress=False,
    )  # fmt: skip
    labels = sentence_input.labels
    gold_sentence = next(i for i, text in enumerate(labels) if item["evidence"] in text)
    fa, sa = np.asarray(doc_fa.seq_attr), np.asarray(sent.seq_attr)
    distractors = [k for k in range(len(docs)) if k != gold_doc]
    closed = sentence_input.render(np.zeros(sentence_input.n_features, dtype=bool))
    prompt_ids = model.tokenize(sentence_input.prompt)
    answer = model.detokenize(model.generate(prompt_ids, max_new_tokens=N_ANSWER))
    return {
        "id": item["id"],
        "gold_position": gold_doc + 1,
        "doc_rank_fa": rank_of(fa, gold_doc),
        "sentence_rank": rank_of(sa, gold_sentence),
        "hier_sentence_rank": rank_of(np.asarray(hier.seq_attr), gold_sentence),
        "hier_top_equals_loo_top": int(np.argmax(hier.seq_attr)) == int(np.argmax(sa)),
        "hier_decoded_share": hier.stats["n_decoded"] / sent.stats["n_decoded"],
        "n_sentences": len(labels),
        "logprob": doc_fa.target_logprob,
        "closed_book_logprob": float(
            model.score([model.tokenize(closed)], item["answer"])[0].sum()
        ),
        "drop_top": float(fa.max()),  # removal: the attribution is the drop
        "drop_gold": float(fa[gold_doc]),
        "drop_distractor_max": float(fa[distractors].max()),
        "top_sentence_drop": float(sa.max()),
        "labels": labels,
        "values": sa,
        "gold_sentence": gold_sentence,
        "model_answer": answer,
        "model_correct": key_word(item["answer"]) in answer.lower(),
        "noise_floor": max(r.noise_floor or 0.0 for r in (doc_fa, sent)),
    }


def statistics(rows: list[dict]) -> dict[str, float]:
    numeric = [k for k, v in rows[0].items() if isinstance(v, (int, float, bool))]
    col = {k: np.array([r[k] for r in rows], dtype=float) for k in numeric}
    return {
        "top1_document_feature_ablation": float(np.mean(col["doc_rank_fa"] == 1)),
        "top1_sentence": float(np.mean(col["sentence_rank"] == 1)),
        "top3_sentence": float(np.mean(col["sentence_rank"] <= 3)),
        "median_sentences": float(np.median(col["n_sentences"])),
        "median_logprob_full": float(np.median(col["logprob"])),
        "median_logprob_closed_book": float(np.median(col["closed_book_logprob"])),
        "median_drop_top_document": float(np.median(col["drop_top"])),
        "median_drop_gold_document": float(np.median(col["drop_gold"])),
        "median_drop_best_distractor": float(np.median(col["drop_distractor_max"])),
        "share_gold_drop_above_every_distractor": float(
            np.mean(col["drop_gold"] > col["drop_distractor_max"])
        ),
        "median_drop_top_sentence": float(np.median(col["top_sentence_drop"])),
        f"top1_sentence_hierarchical_keep{KEEP}": float(np.mean(col["hier_sentence_rank"] == 1)),
        "hierarchical_top_equals_loo_top": float(np.mean(col["hier_top_equals_loo_top"])),
        "median_hierarchical_decoded_share_of_loo": float(np.median(col["hier_decoded_share"])),
        "model_answer_correct": float(np.mean(col["model_correct"])),
        "max_noise_floor": float(col["noise_floor"].max()),
    }


def by_position(rows: list[dict]) -> list[list]:
    table = []
    for p in sorted({r["gold_position"] for r in rows}):
        sub = [r for r in rows if r["gold_position"] == p]
        table.append(
            [
                p,
                len(sub),
                np.mean([r["doc_rank_fa"] == 1 for r in sub]),
                np.mean([r["sentence_rank"] == 1 for r in sub]),
                np.median([r["drop_gold"] for r in sub]),
                np.mean([r["model_correct"] for r in sub]),
            ]
        )
    return table


def figures(report: kit.Report, rows: list[dict]) -> list[str]:
    plt = kit.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    gold = [r["drop_gold"] for r in rows]
    other = [r["drop_distractor_max"] for r in rows]
    ax.scatter(other, gold, c=[r["gold_position"] for r in rows], cmap="viridis", s=30)
    low, high = min(gold + other + [0.0]), max(gold + other + [0.0])
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8)
    ax.set_xlabel("largest drop from removing a distractor document (nats)")
    ax.set_ylabel("drop from removing the gold document (nats)")
    ax.set_title("above the diagonal: the gold document matters most", fontsize=9)
    shown = [report.figure("drops", fig, "log p(answer) drop: gold document vs best distractor")]
    ex = rows[0]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(ex["labels"]) + 1.2), layout="constrained")
    y = np.arange(len(ex["labels"]))
    colors = ["#1a9850" if i == ex["gold_sentence"] else "#2166ac" for i in y]
    ax.barh(y, ex["values"], color=colors)
    ax.set_yticks(y, [label[:60] for label in ex["labels"]], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("attribution to log p(answer), nats (green: the answering sentence)", fontsize=8)
    shown.append(report.figure("example", fig, f"sentence attributions, item {ex['id']}"))
    return shown


def per_question(rows: list[dict]) -> str:
    headers = ["item", "gold pos.", "document rank", "sentence rank"]
    headers += ["drop gold", "drop best distractor", "model's answer", "correct"]
    return kit.table(
        headers,
        [
            [r["id"], r["gold_position"], r["doc_rank_fa"]]
            + [r["sentence_rank"], r["drop_gold"], r["drop_distractor_max"]]
            + [r["model_answer"].strip().replace("\n", " ")[:40], r["model_correct"]]
            for r in rows
        ],
    )


def findings(s: dict[str, float]) -> list[str]:
    return [
        f"- The gold document had the largest feature-ablation attribution for "
        f"{s['top1_document_feature_ablation']:.0%} of the questions; the answering "
        f"sentence ranked first among "
        f"{s['median_sentences']:.0f} sentences for {s['top1_sentence']:.0%}, in the top "
        f"three for {s['top3_sentence']:.0%}.",
        f"- Removing the top document lowered log p(answer) by {s['median_drop_top_document']:.2f}"
        f" nats (median); the gold document {s['median_drop_gold_document']:.2f}, the most "
        f"important distractor {s['median_drop_best_distractor']:.2f}; median log p(answer) "
        f"with all documents: {s['median_logprob_full']:.2f}, with none: "
        f"{s['median_logprob_closed_book']:.2f}.",
        f"- HierarchicalAblation (documents, then the sentences of the strongest {KEEP}) ranked "
        f"the answering sentence first for {s[f'top1_sentence_hierarchical_keep{KEEP}']:.0%}, "
        f"and its top sentence was sentence leave-one-out's for "
        f"{s['hierarchical_top_equals_loo_top']:.0%}, decoding "
        f"{s['median_hierarchical_decoded_share_of_loo']:.0%} of its tokens (median).",
        f"- The model's own greedy answer ({N_ANSWER} tokens) contained the answer's key word "
        f"for {s['model_answer_correct']:.0%}.",
    ]


def main() -> None:
    args = kit.parse_args(__doc__.splitlines()[0])
    report = kit.Report("Study 6: which passage answered", args)
    items = kit.read_jsonl("retrieval_documents.jsonl")
    items = items[:1] if args.quick else items
    with kit.load_model(args) as model:
        report.section(
            "Setup",
            report.setup_text(
                kit.describe_model(model, kit.model_path(args)),
                f"- {len(items)} questions over four invented documents each "
                "(examples/data/retrieval_documents.jsonl), the gold document at position "
                "i mod 4; the gold answer's log-probability attributed to documents "
                "and to sentences (pla.ContextInput; FeatureAblation, absent ones removed; "
                f"HierarchicalAblation document -> sentence, keep={KEEP}); scoring: "
                f"{kit.layout_name(args)}",
            ),
        )
        rows = [run_item(model, item, i % 4) for i, item in enumerate(kit.each(items, "question"))]
    stats = statistics(rows)
    shown = figures(report, rows)
    report.section(
        "Which document answered?",
        kit.table(["statistic", "value"], [[k.replace("_", " "), v] for k, v in stats.items()]),
        shown[0],
    )
    report.section(
        "By the gold document's position",
        kit.table(
            ["position", "questions", "top-1 document (FA)", "top-1 sentence"]
            + ["median drop gold", "model correct"],
            by_position(rows),
        ),
    )
    report.section("Per question", per_question(rows), shown[1])
    report.section("Findings", *findings(stats))
    report.summary = {"n_questions": len(rows), **stats, "by_position": by_position(rows)}
    report.write()


if __name__ == "__main__":
    main()
