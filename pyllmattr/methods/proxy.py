"""Feature ablation with a proxy: a cheaper model prunes, the target model rescores."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pipeline import Evaluation, Job, Settings
from . import staged

DEFAULT_KEEP = 5


def proxy_feature_ablation(model: Any, jobs: list[Job], settings: Settings) -> list[Evaluation]:
    """Leave-one-out of every feature on the proxy; the ``keep`` features with the
    largest |attribution| there are removed again on the target model, whose values
    replace the proxy's for them (``result.computed_by``). The proxy's values are for
    the whole target only (its tokens differ), so token rows are zero elsewhere. Both
    models score all inputs of a batch in one call each."""
    if settings.num_trials != 1:
        raise ValueError("feature ablation is deterministic: num_trials must be 1 with proxy=")
    proxy, keep = settings.options["proxy"], settings.options["keep"] or DEFAULT_KEEP
    target = staged.Stages(model, settings, staged.Role.target)
    cheap = staged.Stages(proxy, settings, staged.Role.proxy)
    cheap_jobs = staged.proxy_jobs(proxy, model, jobs, settings)
    rngs = [settings.rng() for _ in jobs]
    singles = [[np.array([f]) for f in range(job.encoding.n_features)] for job in jobs]
    first, _, _ = cheap.ablate(cheap_jobs, singles, rngs, "proxy: every feature")
    survivors = [np.sort(np.argsort(-np.abs(f[0]), kind="stable")[:keep]) for f in first]
    groups = [[np.array([f]) for f in s] for s in survivors]
    rescored, scored, _ = target.ablate(jobs, groups, rngs, "target: the proxy's top")
    return [
        staged.rescored_evaluation(
            job, f[0], keep_f, again, s, (1 + len(keep_f), 1 + job.encoding.n_features),
            (target, cheap),
        )
        for job, f, keep_f, again, s in zip(jobs, first, survivors, rescored, scored, strict=True)
    ]  # fmt: skip
