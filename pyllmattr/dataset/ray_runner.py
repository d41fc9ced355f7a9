"""The Ray runner: shards of a dataset on Ray actors, one model per actor.

Each actor loads the model once with ``n_threads`` set from the CPUs Ray gave it,
and runs its shard (a run of whole chunks, see :mod:`pyllmattr.dataset.shard`) one
chunk after another, with :data:`IN_FLIGHT` chunks sent ahead. An actor that has run
its shard takes over the last waiting chunk of the actor with the most waiting (at
least :data:`STEAL_MIN_WAITING`), so a slow actor is relieved by idle ones while
balanced runs keep every shard, and its shared prefixes, on one actor. Results come
back as chunks finish. When an actor dies
(``ray.exceptions.RayActorError``: its process was killed, its node went away), the
chunks it had not finished go to a new actor, so no input is lost; a chunk that
takes down :data:`MAX_RESTARTS` actors fails the run.

Ray is an optional dependency (``pip install 'pyllmattr[ray]'``), imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._checks import check_int
from .._extras import require
from ..cancel import Cancelled
from ..frontend import is_loaded, load_model, method_class, model_file
from .batch import Item, Work, run_chunk
from .records import Task
from .shard import make_shards

MAX_RESTARTS = 3
IN_FLIGHT = 2  # chunks sent to an actor at once: one running, one ready to start
STEAL_MIN_WAITING = 2  # an idle actor takes a chunk from a shard with this many waiting
RAY_EXTRA = "pip install 'pyllmattr[ray]' (or pip install ray)"
LOADED_MODEL = (
    "with ray, pass the model's .gguf path (each actor loads its own copy), not a loaded model"
)


def import_ray() -> Any:
    (ray,) = require(("ray",), "attributing a dataset on Ray", RAY_EXTRA)
    return ray


def connect(ray_arg: Any) -> tuple[Any, bool]:
    """(the ray module or None for in-process, whether this call started the connection).

    ``True``: connect to the cluster Ray finds (RAY_ADDRESS, or one started with ``ray
    start`` on this machine), else start a local instance. A string: that cluster's
    address. ``"auto"``: Ray when it is installed and already initialized or a cluster is
    reachable, in-process otherwise. ``False``/``None``: in-process.
    """
    if ray_arg is None or ray_arg is False:
        return None, False
    if ray_arg == "auto":
        try:
            import ray
        except ImportError:
            return None, False
        if ray.is_initialized():
            return ray, False
        try:
            init_ray(ray, address="auto")
        except (ConnectionError, RuntimeError, ValueError):
            return None, False
        return ray, True
    if not (ray_arg is True or isinstance(ray_arg, str)):
        raise ValueError(f"ray must be False, True, 'auto' or a cluster address, got {ray_arg!r}")
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    init_ray(ray, address=None if ray_arg is True else ray_arg)
    return ray, True


def init_ray(ray: Any, **kwargs: Any) -> None:
    """``ray.init`` from a folder that cannot shadow the installed package.

    Ray puts the driver's working directory on its workers' ``sys.path``; run from a
    source checkout of pyllmattr, the workers would import its uncompiled source
    folder instead of the installed package."""
    here = Path.cwd()
    installed = Path(__file__).resolve().parents[1]
    shadowing = (here / "pyllmattr").is_dir() and (here / "pyllmattr") != installed
    os.chdir(installed.parent if shadowing else here)
    try:
        ray.init(include_dashboard=False, logging_level="warning", **kwargs)
    finally:
        os.chdir(here)


class DatasetWorker:
    """What runs inside one Ray actor: one model, one method, chunk after chunk.

    Example:
        >>> actor = ray.remote(num_cpus=1)(DatasetWorker).remote(path, "lime", {})  # doctest: +SKIP
        >>> ray.get(actor.describe.remote())  # doctest: +SKIP
        {'worker': '5f2c81d0:4242', 'n_threads': 1}
    """

    def __init__(self, model: Any, method: str | type, load_args: dict[str, Any]) -> None:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        self.n_threads = max(1, int(cpus))
        cls = method_class(method)
        args = {"n_threads": self.n_threads, **load_args}
        # Loaded for the actor's lifetime: Ray ends the process, which frees the model.
        self.method = cls(load_model(model, cls, args))
        self.name = f"{ray.get_runtime_context().get_node_id()[:8]}:{os.getpid()}"

    def describe(self) -> dict[str, Any]:
        return {"worker": self.name, "n_threads": self.n_threads}

    def run(self, chunk: list[Task], options: dict[str, Any], skip_errors: bool) -> list[Item]:
        items = run_chunk(self.method, chunk, options, skip_errors=skip_errors)
        for item in items:
            item.worker = self.name
        return items


class RayRunner:
    """Runs the chunks of a dataset on ``actors`` Ray actors of ``cpus_per_actor`` CPUs.

    ``actors=None`` uses as many as the cluster's CPUs allow (at most one per chunk).

    Example:
        >>> ray, _ = connect(True)  # doctest: +SKIP
        >>> runner = RayRunner(ray, "m.gguf", "feature-ablation", {}, actors=2)  # doctest: +SKIP
        >>> for items in runner.run(Work(chunks)): ...  # doctest: +SKIP
    """

    def __init__(
        self,
        ray: Any,
        model: Any,
        method: str | type,
        load_args: dict[str, Any],
        *,
        actors: int | None = None,
        cpus_per_actor: float = 1,
    ) -> None:
        if is_loaded(model):
            raise ValueError(LOADED_MODEL)
        check_int("actors", actors, least=1, none_ok=True)
        if not cpus_per_actor or cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be > 0, got {cpus_per_actor!r}")
        # an absolute path: actors do not share the driver's working directory
        self.model = model if model == "default" else str(model_file(model))
        self.ray, self.method = ray, method
        self.load_args, self.actors, self.cpus = dict(load_args), actors, cpus_per_actor
        self.worker_class: Any = None  # DatasetWorker as a Ray actor class, while running
        self.restarts = 0
        self.workers: list[dict[str, Any]] = []  # describe() of every actor started

    def run(self, work: Work) -> Iterator[list[Item]]:
        chunks = [[task.portable() for task in chunk] for chunk in work.chunks]
        work = Work(chunks, work.options, work.skip_errors, work.cancel)
        shards = make_shards(chunks, self._n_actors(len(chunks)))
        self.worker_class = self.ray.remote(num_cpus=self.cpus)(DatasetWorker)
        handles: list[Any] = []
        try:
            handles += self._start(len(shards))
            yield from self._collect(handles, work, shards)
        finally:
            for handle in handles:
                self.ray.kill(handle)

    # ------------------------------------------------------------ helpers
    def _n_actors(self, n_chunks: int) -> int:
        if self.actors is not None:
            return min(self.actors, n_chunks)
        cpus = self.ray.cluster_resources().get("CPU", 1)
        return max(1, min(int(cpus // self.cpus), n_chunks))

    def _start(self, count: int) -> list[Any]:
        """``count`` new actors, waited for until their models are loaded, so a model
        that cannot load fails the run at once with the actor's error."""
        handles = [self._launch() for _ in range(count)]
        try:
            self.workers += self.ray.get([handle.describe.remote() for handle in handles])
        except self.ray.exceptions.RayActorError as exc:
            for handle in handles:
                self.ray.kill(handle)
            raise RuntimeError(f"a Ray actor could not load the model: {_cause(exc)}") from exc
        return handles

    def _launch(self) -> Any:
        """One new actor (its model loads in the background)."""
        return self.worker_class.remote(self.model, self.method, self.load_args)

    def _collect(
        self, handles: list[Any], work: Work, shards: list[list[int]]
    ) -> Iterator[list[Item]]:
        ray, chunks, cancel = self.ray, work.chunks, work.cancel
        waiting = [list(shard) for shard in shards]  # chunks of each actor not sent yet
        running: list[list[int]] = [[] for _ in shards]  # sent, not finished, in order
        pending: dict[Any, tuple[int, int]] = {}  # object ref -> (slot, chunk)
        failures = [0] * len(chunks)

        def feed(slot: int) -> None:
            while len(running[slot]) < IN_FLIGHT:
                if not waiting[slot] and not _take_over(waiting, slot):
                    return
                c = waiting[slot].pop(0)
                ref = handles[slot].run.remote(chunks[c], work.options, work.skip_errors)
                pending[ref] = (slot, c)
                running[slot].append(c)

        for slot in range(len(shards)):
            feed(slot)
        while pending:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("attribute_dataset was cancelled")
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                if ref not in pending:  # dropped with its dead actor
                    continue
                slot, c = pending.pop(ref)
                try:
                    items = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    self._replace(handles, slot, running[slot], failures, exc)
                    for other, (s, _) in list(pending.items()):
                        if s == slot:
                            del pending[other]
                    waiting[slot][:0], running[slot] = running[slot], []
                    feed(slot)
                    continue
                running[slot].remove(c)
                feed(slot)
                yield items

    def _replace(
        self,
        handles: list[Any],
        slot: int,
        unfinished: list[int],
        failures: list[int],
        exc: BaseException,
    ) -> None:
        """A new actor in ``slot``; the chunk that was running there (the first of
        ``unfinished``, as an actor runs its calls in order) is blamed."""
        running = unfinished[0]
        failures[running] += 1
        if failures[running] >= MAX_RESTARTS:
            raise RuntimeError(
                f"a chunk of {len(unfinished)} inputs took down {failures[running]} Ray actors "
                f"in a row; last error: {_cause(exc)}"
            ) from exc
        self.ray.kill(handles[slot])
        self.restarts += 1
        (handles[slot],) = self._start(1)


def _take_over(waiting: list[list[int]], slot: int) -> bool:
    """Give ``slot`` the last waiting chunk of the shard with the most waiting, if it has
    at least STEAL_MIN_WAITING (the last: the victim keeps its run of shared prefixes)."""
    others = [s for s in range(len(waiting)) if s != slot]
    if not others:
        return False
    victim = max(others, key=lambda s: len(waiting[s]))
    if len(waiting[victim]) < STEAL_MIN_WAITING:
        return False
    waiting[slot].append(waiting[victim].pop())
    return True


def _cause(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
