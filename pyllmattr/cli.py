"""Command line: ``pyllmattr demo``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

DEMO_PROMPT = "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include"


def demo(args: argparse.Namespace) -> int:
    import pyllmattr as pla

    with pla.load_gguf(pla.default_model_path(), n_ctx=2048) as model:
        ids = model.tokenize(DEMO_PROMPT)
        target = model.generate(ids, max_new_tokens=args.max_new_tokens)
        # Leave-one-out over the prompt's tokens: every perturbed prompt is scored in one call.
        sequences = [ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
        scores, stats = model.score(sequences, target, return_stats=True)
        target_text = model.detokenize(target)
        pieces = [model.token_to_str(t) for t in ids]
    totals = scores.sum(axis=1)
    effects = totals[0] - totals[1:]
    print(f"prompt: {DEMO_PROMPT!r}")
    print(f"target: {target_text!r}  (log p = {totals[0]:.3f})")
    print("\nhow much each prompt token raises the target's log-probability (leave-one-out):")
    for i in np.argsort(-np.abs(effects))[:10]:
        print(f"  {pieces[i]!r:>16}  {effects[i]:+.3f}")
    print(
        f"\n{len(sequences)} prompts scored: {stats.n_decoded} tokens decoded "
        f"(scoring each alone: {stats.n_naive}) in {stats.seconds:.2f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyllmattr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="explain SmolLM2's continuation of an example")
    demo_parser.add_argument("--max-new-tokens", type=int, default=8)
    demo_parser.set_defaults(run=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as exc:
        print(f"pyllmattr: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
