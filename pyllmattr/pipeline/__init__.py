"""One attribution pipeline for every method (perturbation and gradient).

The steps, each owned by one module:

1. check the options (:mod:`.method`, :class:`.jobs.Settings`),
2. encode every input, inside the chat frame when ``chat=`` is given (:mod:`.jobs`),
3. resolve its target (given or generated) and its objective (:mod:`.jobs`,
   :mod:`pyllmattr.objectives`),
4. evaluate: the method's ``evaluate`` (perturbation methods score all prompts of all
   inputs through :func:`.scoring.score_prompts`; gradient methods run PyTorch),
5. solve: inside the method's ``evaluate`` (its ``solve`` or its gradients),
6. measure the noise floor (:func:`.scoring.noise_floors`),
7. build each result once (:func:`.build.build_result`).

:func:`.run.run` drives them under the model's attribution lock;
``attribute(inp, ...)`` is ``attribute_batch([inp], ...)[0]``.
"""

from __future__ import annotations

from .build import Evaluation, build_result
from .jobs import Job, Settings, resolve_target
from .method import AttributionMethod
from .run import attribution_lock, run
from .scoring import score_all, score_prompts

__all__ = [
    "AttributionMethod",
    "Evaluation",
    "Job",
    "Settings",
    "attribution_lock",
    "build_result",
    "resolve_target",
    "run",
    "score_all",
    "score_prompts",
]
