"""Attributing a dataset: many inputs, in chunks, in this process or on Ray actors.

``pla.attribute_dataset`` is the entry point; :func:`run_tasks` is the streaming core
it shares with ``pyllmattr attribute-dataset`` (results as chunks finish, bad inputs
reported instead of raised). See docs/datasets.md.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..cancel import Cancelled
from ..frontend import is_loaded, method_class, model_file
from ..progress import check_progress, progress_callback
from ..results import AttributionResult
from .batch import Item, Work
from .local import LocalRunner
from .ray_runner import LOADED_MODEL, RayRunner, connect, import_ray
from .records import Task, make_tasks, parse_record
from .shard import make_chunks

DEFAULT_CHUNK_SIZE = 32
# attribute() arguments that attribute_dataset owns (per input, or for the whole run)
RESERVED = {"inp", "target", "targets", "progress", "cancel", "contrast", "contrasts"}

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Item",
    "Task",
    "attribute_dataset",
    "make_tasks",
    "parse_record",
    "run_tasks",
]


def attribute_dataset(
    model_path: str | os.PathLike | Any,
    inputs: Sequence[Any],
    method: str | type = "feature-ablation",
    targets: Sequence[Any] | None = None,
    ray: bool | str | None = False,
    *,
    contrasts: Sequence[Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    load_args: Mapping[str, Any] | None = None,
    method_args: Mapping[str, Any] | None = None,
    features: str = "word",
    progress: Any = None,
    cancel: Any = None,
    stream: bool = False,
    actors: int | None = None,
    cpus_per_actor: float = 1,
) -> list[AttributionResult] | Iterator[AttributionResult]:
    """Attribute every input of a dataset; results in input order.

    ``model_path``: a .gguf path, ``"default"`` (the demo model) or, in-process only,
    a model from ``pla.load_gguf``. ``inputs``: ``pla.TextTemplateInput`` /
    ``TextTokenInput`` objects, prompt strings (their ``features``: word, sentence,
    paragraph or token) or records as in ``pyllmattr attribute-dataset`` files.
    ``targets`` (one per input; None entries and ``targets=None`` generate them
    greedily, unless a record has its own). ``contrasts`` (one per input, text or
    token ids; None entries: the record's "contrast", or none) attribute
    log p(target) - log p(contrast) for those inputs. ``method``: a name of ``pla.METHODS`` or a
    class; ``method_args``: keyword arguments of its ``attribute`` (``attr_target``,
    ``gen_args``, ``seed``, ``n_samples``, ...); ``load_args``: of ``pla.load_gguf``.

    Inputs are scored ``chunk_size`` at a time, each chunk in one batch attribution
    (inputs whose prompts start alike are put in the same chunks). ``ray=False`` (the
    default) runs in this process; ``True``, ``"auto"`` or a cluster address shard the
    chunks over Ray actors (``pip install 'pyllmattr[ray]'``; ``actors`` of
    ``cpus_per_actor`` CPUs each, ``n_threads`` set from them; see
    :mod:`pyllmattr.dataset.ray_runner`). ``progress`` counts inputs (None: a bar in
    terminals for long runs; a callable gets ``(done, total)``). ``stream=True`` returns
    an iterator that yields each result as soon as it and all before it are done.

    Example:
        >>> results = pla.attribute_dataset("default", ["Paris is the capital of",
        ...     "Rome is the capital of"], targets=[" France", " Italy"])  # doctest: +SKIP
        >>> pla.summarize(results)  # doctest: +SKIP
    """
    tasks = make_tasks(inputs, targets, contrasts=contrasts, features=features)
    items = run_tasks(
        model_path,
        tasks,
        method,
        ray=ray,
        chunk_size=chunk_size,
        load_args=load_args,
        method_args=method_args,
        progress=progress,
        cancel=cancel,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
    )
    results = (_result(item) for item in items)
    return results if stream else list(results)


def _result(item: Item) -> AttributionResult:
    # run_tasks raises on a failed input unless skip_errors: every item has a result
    assert item.result is not None, item.error
    return item.result


def run_tasks(
    model: Any,
    tasks: Sequence[Task],
    method: str | type = "feature-ablation",
    *,
    ray: bool | str | None = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    load_args: Mapping[str, Any] | None = None,
    method_args: Mapping[str, Any] | None = None,
    progress: Any = None,
    cancel: Any = None,
    ordered: bool = True,
    skip_errors: bool = False,
    actors: int | None = None,
    cpus_per_actor: float = 1,
) -> Iterator[Item]:
    """Run ``tasks``; yields one :class:`Item` per task.

    ``ordered=True`` yields in the order of ``tasks`` (holding back what finishes
    early); ``ordered=False`` as each chunk finishes. ``skip_errors=True`` turns a bad
    input into an Item with ``error`` instead of a ValueError. Everything is checked
    before any model loads.

    Example:
        >>> tasks = make_tasks(["Paris is the capital of"], [" France"])
        >>> [item.result.target for item in run_tasks("default", tasks)]  # doctest: +SKIP
        [' France']
    """
    cls = method_class(method)
    options = check_method_args(cls, method_args)
    check_progress(progress)
    ids = [task.index for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("run_tasks: two tasks have the same index")
    work = Work(make_chunks(tasks, chunk_size), options, skip_errors, cancel)
    make_runner = _runner_factory(model, cls, dict(load_args or {}), ray, actors, cpus_per_actor)
    return _run(make_runner, work, ids, progress, ordered)


def check_method_args(cls: Any, method_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method arguments, with ValueError for those its ``attribute`` does not take."""
    args = dict(method_args or {})
    reserved = sorted(RESERVED & set(args))
    if reserved:
        raise ValueError(
            f"method_args {reserved}: give targets= and contrasts= (one per input), "
            "progress= and cancel= to attribute_dataset itself"
        )
    params = inspect.signature(cls.attribute).parameters
    allowed = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD} - {"self"}
    allowed |= set(getattr(cls, "defaults", {}))
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValueError(
            f"{cls.__name__} does not take {unknown}; its arguments are "
            f"{sorted(allowed - RESERVED)}"
        )
    return args


def _runner_factory(
    model: Any, cls: type, load_args: dict, ray: Any, actors: Any, cpus_per_actor: float
) -> Callable[[], tuple[Any, Any]]:
    """A callable giving (runner, the ray module to shut down after, if we connected);
    what can be checked without connecting (Ray installed, the arguments) is checked now."""
    if ray is True or (isinstance(ray, str) and ray != "auto"):
        import_ray()
    if ray not in (None, False, True) and not isinstance(ray, str):
        raise ValueError(f"ray must be False, True, 'auto' or a cluster address, got {ray!r}")
    if ray not in (None, False) and is_loaded(model):
        if ray == "auto":
            runner = LocalRunner(model, cls, load_args)
            return lambda: (runner, None)
        raise ValueError(LOADED_MODEL)
    if not is_loaded(model):
        model_file(model)  # fail now, not in every actor

    def make() -> tuple[Any, Any]:
        ray_module, started = connect(ray)
        if ray_module is None:
            return LocalRunner(model, cls, load_args), None
        runner = RayRunner(
            ray_module, model, cls, load_args, actors=actors, cpus_per_actor=cpus_per_actor
        )
        return runner, ray_module if started else None

    return make


def _run(
    make_runner: Callable[[], tuple[Any, Any]],
    work: Work,
    order: list[int],
    progress: Any,
    ordered: bool,
) -> Iterator[Item]:
    waiting: dict[int, Item] = {}
    position = done = 0
    runner, started_ray = make_runner()
    try:
        with (
            progress_callback(progress, "attribute_dataset: inputs") as report,
            contextlib.closing(runner.run(work)) as batches,
        ):
            for items in batches:
                done += len(items)
                if report is not None and report(done, len(order)) is False:
                    raise Cancelled("attribute_dataset was cancelled by its progress callback")
                if not ordered:
                    yield from items
                    continue
                waiting.update((item.index, item) for item in items)
                while position < len(order) and order[position] in waiting:
                    yield waiting.pop(order[position])
                    position += 1
    finally:
        if started_ray is not None:
            started_ray.shutdown()
