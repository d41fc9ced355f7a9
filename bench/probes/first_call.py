"""A process's first scoring call with and without the self-check's cache (issue 27, part 1).

Three fresh processes on one model share one new cache folder: the first runs the exact
layout's self-check and stores its outcome (what every process did before the cache), the
next two find it. Each times loading the model, its first scoring call and a second one
(the same 40-token prompt and 8-token target), and says how the layout was verified.

    python bench first_call --model /tmp/laptop-1b.Q4_K_M.gguf --out /tmp/first-call.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from time import perf_counter

from harness import bench_command, command_line, texts
from harness.jobs import cut_to_tokens
from harness.run import cpu_model

import pyllmattr as pla


def one_process(model_path: str, threads: int) -> dict[str, object]:
    """Runs in a child process: the timings of one user's first calls."""
    start = perf_counter()
    model = pla.load_gguf(model_path, n_threads=threads)
    loaded = perf_counter() - start
    prompt = model.tokenize(cut_to_tokens(model, 40, texts.CORPUS))
    target = model.tokenize(" and the rest of the story", add_special=False)[:8]
    calls = []
    for _ in range(2):
        start = perf_counter()
        model.score([prompt], target)
        calls.append(perf_counter() - start)
    return {
        "load_s": loaded,
        "first_s": calls[0],
        "second_s": calls[1],
        "verified_by": model.exact_verified_by,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(pla.default_model_path()))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_process(args.model, args.threads)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYLLMATTR_CACHE_DIR": cache}
        for _ in range(3):
            command = bench_command(
                "first_call", "--child", "--model", args.model, "--threads", args.threads
            )
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    name = Path(args.model).name
    lines = [
        f"First scoring call of a process on `{name}` ({args.threads} threads, "
        f"{cpu_model()}); `{command_line('first_call')}`",
        "",
        "| process | layout verified by | load s | first call s | second call s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for i, r in enumerate(rows, start=1):
        lines.append(
            f"| {i} | {r['verified_by']} | {r['load_s']:.2f} | {r['first_s']:.2f} "
            f"| {r['second_s']:.2f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
