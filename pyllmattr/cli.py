"""Command line: ``pyllmattr demo``."""

from __future__ import annotations

import argparse
import sys

# The example of Captum's LLM attribution paper (arXiv 2312.05491).
DEMO_TEMPLATE = (
    "{name} lives in {city}, {state} and is a {job}. {pronoun} personal interests include"
)
DEMO_VALUES = {
    "name": "Dave",
    "city": "Palm Coast",
    "state": "FL",
    "job": "lawyer",
    "pronoun": "His",
}
DEMO_BASELINES = {
    "name": "Sarah",
    "city": "Seattle",
    "state": "WA",
    "job": "doctor",
    "pronoun": "Her",
}


def print_result(result) -> None:
    print(f"prompt: {result.prompt!r}")
    print(f"target: {result.target!r}  (log p = {result.target_logprob:.3f})")
    print(f"\n{result.method}: how much each feature raises the target's log-probability")
    width = max(len(name) for name in result.input_features)
    for name, value in result.top_features(len(result.input_features)):
        bar = "#" * min(40, round(abs(value) * 8))
        print(f"  {name:<{width}}  {value:+8.3f}  {'+' if value >= 0 else '-'}{bar}")
    stats = result.stats
    print(
        f"\n{stats['n_evaluations']} prompts scored: {stats['n_decoded']} tokens decoded "
        f"(one by one: {stats['n_naive']}) in {stats['seconds']:.2f} s"
    )


def demo(args: argparse.Namespace) -> int:
    import pyllmattr as pla

    with pla.load_gguf(pla.default_model_path(), n_ctx=2048) as model:
        inp = pla.TextTemplateInput(DEMO_TEMPLATE, DEMO_VALUES, baselines=DEMO_BASELINES)
        result = pla.FeatureAblation(model).attribute(
            inp, gen_args={"max_new_tokens": args.max_new_tokens}
        )
    print_result(result)
    if args.plot:
        try:
            fig, _ = result.plot_token_attr()
        except ImportError as exc:
            print(f"\n(no heatmap: {exc})")
            return 0
        fig.savefig(args.plot, dpi=120)
        print(f"heatmap written to {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyllmattr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="explain SmolLM2's continuation of Captum's Palm Coast example"
    )
    demo_parser.add_argument("--max-new-tokens", type=int, default=10)
    demo_parser.add_argument(
        "--plot", default="pyllmattr-demo.png", help="heatmap PNG to write ('' for none)"
    )
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
