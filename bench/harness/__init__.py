"""The benchmark harness: the runs behind BENCHMARKS.md and the modules they share.

Entries (``python bench NAME``): ``run`` (the four jobs against Captum and
llama-cpp-python; ``worker`` runs one configuration for it), ``dataset``, ``ig_memory``,
``context_attribution``, ``faithfulness`` and ``interactions``. Shared modules: ``jobs``,
``texts``, ``runners``, ``captum_side``, ``torch_gguf``, ``report``, ``dataset_job``,
``context_report``, ``prompt_sets``, ``faithfulness_report``, ``interactions_report``,
and here the paths, the command lines and :class:`Clock`.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def bench_command(name: str, *args: object) -> list[str]:
    """The command line that runs entry ``name`` in a fresh Python process."""
    return [sys.executable, str(BENCH), name, *map(str, args)]


def command_line(name: str) -> str:
    """How this run was started, as the reports quote it (``python bench NAME ...``)."""
    return shlex.join(["python", "bench", name, *sys.argv[1:]])


class Clock:
    """Wall and CPU seconds of a block (all of this process's threads, llama.cpp's included).

    Example:
        >>> with Clock() as clock:
        ...     pass
        >>> clock.wall >= 0 and clock.cpu >= 0
        True
    """

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
