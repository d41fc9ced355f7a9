"""Command line: ``pyllmattr attribute`` and ``pyllmattr demo``.

Exit status: 0 on success, 2 for usage errors (argparse's convention), 1 when the
work fails (a bad model file, a prompt too long, a missing optional package), with
a one-line message on stderr, and 130 when interrupted.
"""

from __future__ import annotations

import sys

from .parser import build_parser

__all__ = ["build_parser", "main"]

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args, parser)
    except KeyboardInterrupt:
        print("pyllmattr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        # Library errors say what to do; a traceback would only bury that.
        print(f"pyllmattr: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
