"""What the exact layout costs against the fast one on long prompts (sampled leave-one-out).

Leave-one-out over a sample of the words of an N-token prompt (job 4's corpus), scored
by both layouts in turn.

The full job 4 at 1024 tokens takes about half an hour per configuration on a 2-core
machine; the cost of a layout is its decoded tokens and its throughput over them, so a
sample of evaluations spread evenly over the prompt measures the same ratio in minutes.
No noise floor is measured here (the fast default measures one extra unshared sequence
per attribution, under 1 % of job 4's tokens).

    python bench exact_cost --tokens 1024 --words 32 --repeats 2 --out /tmp/exact-cost.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from harness import texts
from harness.jobs import cut_to_tokens

import pyllmattr as pla

LAYOUTS = {"fast (deterministic=False)": False, "exact (the default)": None}


def leave_one_out(model, text: str, n_words: int) -> tuple[list[list[int]], list[int]]:
    """The prompt and `n_words` copies without one word each, evenly spread over it."""
    words = text.split(" ")
    step = max(1, len(words) // n_words)
    prompt = model.tokenize(text)
    sequences = [prompt]
    for i in range(0, len(words), step)[:n_words]:
        sequences.append(model.tokenize(" ".join(words[:i] + words[i + 1 :])))
    target = model.generate(prompt, 8, stop_at_eos=False)
    return sequences, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--words", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="/tmp/exact-cost.md")
    args = parser.parse_args()

    models = {
        name: pla.load_gguf(
            pla.default_model_path(),
            n_ctx=args.tokens + 64,
            n_threads=args.threads,
            deterministic=value,
        )
        for name, value in LAYOUTS.items()
    }
    first = next(iter(models.values()))
    text = cut_to_tokens(first, args.tokens, texts.CORPUS)
    sequences, target = leave_one_out(first, text, args.words)
    first_call = {}
    for name, model in models.items():  # the exact layout's self-check runs in its first call
        started = time.perf_counter()
        model.score(sequences[:1], target[:1])
        first_call[name] = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in models}
    stats = {}
    for _ in range(args.repeats):
        for name, model in models.items():  # interleaved: both see the same load
            started = time.perf_counter()
            _, stats[name] = model.score(sequences, target, return_stats=True)
            times[name].append(time.perf_counter() - started)
    fast, exact = (statistics.median(times[name]) for name in models)
    lines = [
        f"# Exact layout cost: leave-one-out over {args.words} words of a "
        f"{len(sequences[0])}-token prompt",
        "",
        f"`python bench exact_cost --tokens {args.tokens} --words {args.words} "
        f"--repeats {args.repeats}`; {args.threads} threads, load average at the end "
        f"{os.getloadavg()[0]:.2f}; SmolLM2-135M-Instruct Q4_1.",
        "",
        "| layout | median s | runs | decoded | trie | naive | padding | decode calls |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in models:
        s = stats[name]
        lines.append(
            f"| {name} | {statistics.median(times[name]):.2f} | {len(times[name])} | "
            f"{s.n_decoded} | {s.n_trie} | {s.n_naive} | {s.n_padding} | {s.n_decode_calls} |"
        )
    lines += [
        "",
        f"exact / fast: **{exact / fast:.2f}x**. First call (one sequence; the exact layout's "
        "self-check runs in it): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in first_call.items()),
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
