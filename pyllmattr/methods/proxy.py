"""Feature ablation with a proxy: a cheaper model prunes, the target model rescores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import staged
from .base import check_positive_int

DEFAULT_KEEP = 5


def proxy_feature_ablation(
    method: Any,
    inp: Any,
    proxy: Any,
    keep: int | None = None,
    target: str | Sequence[int] | None = None,
    attr_target: str = "log_prob",
    gen_args: Mapping[str, Any] | None = None,
    num_trials: int = 1,
    seed: int | None = None,
    progress: Any = None,
    cancel: Any = None,
    noise_floor: bool = True,
    chat: bool | Mapping[str, str] = False,
) -> staged.StagedResult:
    """Leave-one-out of every feature on ``proxy``; the ``keep`` features with the
    largest |attribution| there are removed again on the target model, whose values
    replace the proxy's for them (``result.computed_by``). The proxy's values are for
    the whole target only (its tokens differ), so token rows are zero elsewhere."""
    keep = DEFAULT_KEEP if keep is None else keep
    check_positive_int("keep", keep)
    if num_trials != 1:
        raise ValueError("feature ablation is deterministic: num_trials must be 1 with proxy=")
    job, chat_settings = staged.start(
        method, inp, target, attr_target, gen_args, chat, progress, cancel
    )
    cheap = staged.proxy_job(proxy, inp, job, chat_settings)
    rng = np.random.default_rng(seed)
    n = job.encoding.n_features
    singles = [np.array([f]) for f in range(n)]
    first = staged.leave_one_out(cheap, singles, rng, "proxy")[0]
    survivors = np.sort(np.argsort(-np.abs(first), kind="stable")[:keep])
    rescored = staged.leave_one_out(job, [singles[f] for f in survivors], rng, "target")
    values = np.zeros((1 + len(job.target_ids), n))
    values[0] = first
    values[:, survivors] = rescored
    computed_by = ["proxy"] * n
    refined = [False] * n
    for f in survivors:
        computed_by[f], refined[f] = "target", True
    records = [
        staged.level_record("features", "proxy", range(n), first),
        staged.level_record("features", "target", survivors, rescored[0]),
    ]
    result = staged.finish(
        method,
        job,
        values,
        {"keep": keep},
        seed,
        chat_settings,
        records,
        computed_by,
        refined,
        proxy=cheap,
    )
    if noise_floor:
        staged.measure_noise_floor(result, job)
    return result
