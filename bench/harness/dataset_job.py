"""The dataset benchmark's job: an 8-shot addition prompt over many queries.

Every query has the same eight in-context examples (each one feature, removed when
absent) and its own two-number sum as fixed text after them; the target is the
correct sum (2-4 tokens). Queries are distinct pairs drawn with a fixed seed, so any
number of them can be made and the job is the same in every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXAMPLES = [
    "23 + 45 = 68",
    "17 + 60 = 77",
    "31 + 12 = 43",
    "50 + 29 = 79",
    "64 + 18 = 82",
    "72 + 26 = 98",
    "15 + 33 = 48",
    "41 + 47 = 88",
]
SEED = 2312


def queries(n: int) -> list[tuple[int, int]]:
    """``n`` distinct (a, b) pairs of two-digit numbers, none an example's."""
    rng = np.random.default_rng(SEED)
    seen = {tuple(int(x) for x in e.split(" = ")[0].split(" + ")) for e in EXAMPLES}
    out: list[tuple[int, int]] = []
    while len(out) < n:
        a, b = (int(x) for x in rng.integers(10, 90, size=2))
        if (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


def slot_values() -> list[str]:
    return [f"{e}\n" for e in EXAMPLES]


def query_text(a: int, b: int) -> str:
    return f"{a} + {b} ="


def template(a: int, b: int) -> str:
    """``{}`` slots for the examples, then the query (no braces to escape)."""
    return "{}" * len(EXAMPLES) + query_text(a, b)


def target(a: int, b: int) -> str:
    return f" {a + b}"


def records(n: int) -> list[dict[str, Any]]:
    """The job as pyllmattr dataset records."""
    return [
        {
            "id": f"{a}+{b}",
            "template": template(a, b),
            "values": slot_values(),
            "target": target(a, b),
        }
        for a, b in queries(n)
    ]
