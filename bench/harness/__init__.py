"""The benchmark harness: the runs behind BENCHMARKS.md and the modules they share.

Entries (``python bench NAME``): ``run`` (the four jobs against Captum and
llama-cpp-python; ``worker`` runs one configuration for it), ``dataset``, ``ig_memory``,
``context_attribution``, ``faithfulness`` and ``interactions``. Shared modules: ``jobs``,
``texts``, ``runners``, ``captum_side``, ``torch_gguf``, ``report``, ``dataset_job``,
``context_report``, ``prompt_sets``, ``faithfulness_report``, ``interactions_report``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def bench_command(name: str, *args: object) -> list[str]:
    """The command line that runs entry ``name`` in a fresh Python process."""
    return [sys.executable, str(BENCH), name, *map(str, args)]


def command_line(name: str) -> str:
    """How this run was started, as the reports quote it (``python bench NAME ...``)."""
    return shlex.join(["python", "bench", name, *sys.argv[1:]])
