"""Leave-one-out time against max_branches (leaves per wave), with the decoded tokens.

Every token attends over all KV cells of its wave, so large waves cost attention;
the shared prefix is kept between waves, so the tokens decoded do not change.

    python bench wave_size
    python bench wave_size --tokens 1024 --stride 8

``--tokens N`` instead cuts texts.CORPUS to N tokens and scores every ``stride``-th
leave-one-out sequence (the sharing pattern of token-level ablation, fewer leaves).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from harness.texts import CORPUS, PALM_COAST

import pyllmattr as pla

LONG = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing golf "
    "on weekends, reading history books, and cooking Italian food for his family. The Eiffel "
    "Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower. In 1969, "
    "Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while Michael "
    "Collins stayed in orbit. On weekends, Dave likes to"
)


def leave_one_out_seconds(
    path, text: str, max_branches: int | None, repeats: int = 3, tokens: int = 0, stride: int = 1
):
    share = max_branches is not None
    with pla.load_gguf(path, n_ctx=4096, n_threads=2, max_branches=max_branches or 8) as model:
        ids = model.tokenize(text)[: tokens or None]
        target = model.tokenize(" play golf with his friends.", add_special=False)
        sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(0, len(ids), stride)]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _, stats = model.score(sequences, target, share_prefix=share, return_stats=True)
            times.append(time.perf_counter() - start)
    return len(ids), float(np.median(times)), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=0, help="cut texts.CORPUS to this length")
    parser.add_argument("--stride", type=int, default=1, help="every stride-th leave-one-out")
    parser.add_argument("--branches", default="4,8,16,64,0", help="max_branches (0: one by one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path = pla.default_model_path()
    texts = [CORPUS] if args.tokens else [PALM_COAST, LONG]
    print("| prompt tokens | sequences | max_branches | median s | decoded | waves |")
    print("|---|---|---|---|---|---|")
    for text in texts:
        for branches in (int(b) or None for b in args.branches.split(",")):
            n, seconds, stats = leave_one_out_seconds(
                path, text, branches, args.repeats, args.tokens, args.stride
            )
            label = branches if branches else "one by one"
            print(
                f"| {n} | {stats.n_unique} | {label} | {seconds:.2f} | {stats.n_decoded} "
                f"| {stats.n_waves} |"
            )


if __name__ == "__main__":
    main()
