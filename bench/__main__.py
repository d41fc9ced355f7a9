"""pyllmattr's benchmarks and probes, one entry: ``python bench NAME [options]``.

``python bench`` lists the entries with their purpose; ``python bench NAME --help``
shows one's options. Run it from any directory with the package installed
(``pip install . --no-build-isolation``), giving this folder's path (``python
path/to/bench``). Python puts this folder first on ``sys.path``, not the repository
root, so the installed pyllmattr (with its compiled engine) is imported rather than the
source folder, which is why it is ``python bench`` and not ``python -m bench``.

* ``harness/``: the benchmarks behind BENCHMARKS.md and the modules they share;
* ``probes/``: one-off measurements quoted in the docs;
* ``results/``: what they wrote, from which BENCHMARKS.md is rendered.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GROUPS = {"harness": "the benchmarks behind BENCHMARKS.md", "probes": "one-off measurements"}


def entries() -> dict[str, tuple[str, Path]]:
    """Every runnable module (one with a ``__main__`` block): name -> (group, file)."""
    found: dict[str, tuple[str, Path]] = {}
    for group in GROUPS:
        for path in sorted((HERE / group).glob("*.py")):
            if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
                found[path.stem] = (group, path)
    return found


def purpose(path: Path) -> str:
    """The first line of a module's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.splitlines()[0] if doc else "(no docstring)"


def listing() -> str:
    lines = ["usage: python bench NAME [options]    (python bench NAME --help: its options)"]
    known = entries()
    for group, what in GROUPS.items():
        lines += ["", f"{group}/ ({what}):"]
        lines += [f"  {name:<22}{purpose(path)}" for name, (g, path) in known.items() if g == group]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(listing())
        return 0
    known = entries()
    if argv[0] not in known:
        print(f"python bench: no entry called {argv[0]!r}\n\n{listing()}", file=sys.stderr)
        return 2
    group, path = known[argv[0]]
    sys.argv = [str(path), *argv[1:]]  # the entry parses its own options
    runpy.run_module(f"{group}.{argv[0]}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
