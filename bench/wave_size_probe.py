"""Leave-one-out time against max_branches (leaves per wave), with the decoded tokens.

Every token attends over all KV cells of its wave, so large waves cost attention;
the shared prefix is kept between waves, so the tokens decoded do not change.

    cd /tmp && python /work/main/bench/wave_size_probe.py
"""

from __future__ import annotations

import time

import numpy as np
from texts import PALM_COAST

import pyllmattr as pla

LONG = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing golf "
    "on weekends, reading history books, and cooking Italian food for his family. The Eiffel "
    "Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower. In 1969, "
    "Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while Michael "
    "Collins stayed in orbit. On weekends, Dave likes to"
)


def leave_one_out_seconds(path, text: str, max_branches: int | None, repeats: int = 3):
    share = max_branches is not None
    with pla.load_gguf(path, n_ctx=4096, n_threads=2, max_branches=max_branches or 8) as model:
        ids = model.tokenize(text)
        target = model.tokenize(" play golf with his friends.", add_special=False)
        sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _, stats = model.score(sequences, target, share_prefix=share, return_stats=True)
            times.append(time.perf_counter() - start)
    return len(ids), float(np.median(times)), stats


def main() -> None:
    path = pla.default_model_path()
    print("| prompt tokens | max_branches | median s | decoded | waves |")
    print("|---|---|---|---|---|")
    for text in (PALM_COAST, LONG):
        for branches in (4, 8, 16, 64, None):
            n, seconds, stats = leave_one_out_seconds(path, text, branches)
            label = branches if branches else "one by one"
            print(f"| {n} | {label} | {seconds:.2f} | {stats.n_decoded} | {stats.n_waves} |")


if __name__ == "__main__":
    main()
