"""Which in-context examples help? A k-shot prompt evaluated over many queries.

Captum's LLM attribution paper (arXiv 2312.05491) evaluates few-shot prompts this
way: every example of the prompt is one feature (absent: removed), the query after
them is fixed text, and each query's answer is attributed to the examples. Over many
queries, ``pla.summarize`` tells which examples raise the answers' log-probability
on average (and how consistently), which do nothing and which hurt. The prompt
below has six sound examples, a wrong one ("Spain: Tokyo") and one off the task.

All queries go to ``pla.attribute_dataset`` as one dataset: chunks of inputs are
attributed in one batch each, so the perturbed example blocks, a prefix common to
every query, are decoded once per chunk instead of once per query.

    python examples/few_shot.py                 # 52 queries on SmolLM2: ~12,000 tokens
                                                # decoded, under a minute at 300 tok/s
    python examples/few_shot.py --quick         # 6 queries
    python examples/few_shot.py --export few_shot_cli.jsonl   # records for the CLI:
    pyllmattr attribute-dataset few_shot_cli.jsonl --out results.jsonl --summary few_shot.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pyllmattr as pla

DATA = Path(__file__).parent / "data" / "few_shot.jsonl"
EXAMPLES = [
    "France: Paris",
    "Japan: Tokyo",
    "Egypt: Cairo",
    "Canada: Ottawa",
    "Spain: Tokyo",  # wrong on purpose
    "Kenya: Nairobi",
    "Peru: Lima",
    "I like turtles.",  # off the task
]
QUICK_QUERIES = 6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="a .gguf file (default: SmolLM2)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_QUERIES} queries only")
    parser.add_argument("--data", type=Path, default=DATA, help="queries (JSON lines)")
    parser.add_argument("--shots", type=int, default=len(EXAMPLES), help="examples used (k)")
    parser.add_argument("--method", default="feature-ablation", choices=sorted(pla.METHODS))
    parser.add_argument("--plot", default="few_shot.png", help="summary plot ('' for none)")
    parser.add_argument("--export", type=Path, help="write the dataset as CLI records and stop")
    parser.add_argument("--json", type=Path, help="write the summary as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.shots <= len(EXAMPLES):
        parser.error(f"--shots must be between 1 and {len(EXAMPLES)}")
    return args


def load_queries(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """The queries: one ``{"id", "country", "capital"}`` object per line."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows[:limit] if limit else rows


def few_shot_record(examples: list[str], query: dict[str, str]) -> dict[str, Any]:
    """A template record: each example one slot (a feature, removed when absent), the
    query written in as fixed text, so every query's result has the same features."""
    slots = {f"e{i}": f"{text}\n" for i, text in enumerate(examples)}
    return {
        "id": query["id"],
        "template": "".join("{" + key + "}" for key in slots) + "{query}:",
        "values": slots,
        "fixed": {"query": query["country"]},
        "target": " " + query["capital"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    queries = load_queries(args.data, QUICK_QUERIES if args.quick else None)
    records = [few_shot_record(EXAMPLES[: args.shots], q) for q in queries]
    if args.export:
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
        args.export.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(records)} records written to {args.export}")
        return 0
    start = time.perf_counter()
    with pla.load_gguf(pla.default_model_path() if args.model == "default" else args.model) as m:
        results = pla.attribute_dataset(m, records, method=args.method, progress=False)
    seconds = time.perf_counter() - start
    summary = pla.summarize(results)
    print(f"{args.shots}-shot prompt, {len(results)} queries, {seconds:.1f} s\n")
    print(summary)
    print()
    print(verdict(summary))
    if args.json:
        args.json.write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    if args.plot:
        save_plot(summary, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


def verdict(summary: pla.DatasetSummary) -> str:
    """Examples whose mean is at least two standard errors above (below) zero."""
    helps, hurts = [], []
    for i, name in enumerate(summary.features):
        low = summary.mean[i] - 2 * summary.stderr[i]
        high = summary.mean[i] + 2 * summary.stderr[i]
        if low > 0:
            helps.append(name)
        elif high < 0:
            hurts.append(name)
    return (
        f"helps (mean > 2 s.e.): {', '.join(helps) or 'none'}\n"
        f"hurts (mean < -2 s.e.): {', '.join(hurts) or 'none'}"
    )


def save_plot(summary: pla.DatasetSummary, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = summary.plot()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
