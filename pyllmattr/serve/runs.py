"""Attributions run by the app: one worker thread per run, one run at a time per model.

The engine releases the GIL while llama.cpp computes, so the web server keeps
answering (progress polls, a cancel) while a run works. A run's state, progress and
result live in a :class:`Run`; :class:`Runs` starts them, refuses a second run on a
busy model (:class:`Busy`), cancels them and keeps the loaded models (a few at most).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .requests import RunRequest, page_methods

MAX_LOADED_MODELS = 2
MAX_KEPT_RUNS = 100  # finished runs kept for the page's downloads; the oldest go first


class Busy(Exception):
    """A run is already working on this model (the app answers HTTP 409).

    Example:
        >>> runs.start(request); runs.start(request)  # doctest: +SKIP
        Traceback (most recent call last):
        Busy: busy: run 1 is working on default; wait for it to finish or cancel it ...
    """


@dataclass
class Run:
    """One attribution: its request, where it is, and what it found (or why it failed).

    Example:
        >>> run = runs.start(request)  # doctest: +SKIP
        >>> runs.wait(run.id).state, run.result.top_features(3)  # doctest: +SKIP
        ('done', [('include', 10.49), ('interests', 2.45), ('personal', 1.34)])
    """

    id: int
    request: RunRequest
    cancel: Any
    state: str = "queued"  # queued, loading, generating, scoring, done, error, cancelled
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    result: Any = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled")

    def progress(self, done: int, total: int) -> bool:
        self.done, self.total = int(done), int(total)
        return not self.cancel.cancelled

    def status(self) -> dict[str, Any]:
        elapsed = self.seconds if self.seconds is not None else time.monotonic() - self.started
        return {
            "id": self.id,
            "model": self.request.model,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "seconds": round(elapsed, 3),
            "error": self.error,
        }


class Runs:
    """Starts runs in worker threads and keeps their state.

    ``load(ref, fast)`` opens a model (``pla.load_gguf`` of the resolved
    reference by default).

    Example:
        >>> runs = Runs(load=lambda ref, det: pla.load_gguf(ref))  # doctest: +SKIP
        >>> run = runs.start(parse_request({"prompt": "Hi there"}, "default"))  # doctest: +SKIP
    """

    def __init__(self, load: Callable[[str, bool], Any]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._runs: OrderedDict[int, Run] = OrderedDict()
        self._models: OrderedDict[tuple[str, bool], Any] = OrderedDict()
        self._busy: dict[tuple[str, bool], int] = {}  # model key -> the run working on it
        self._ids = itertools.count(1)

    def start(self, request: RunRequest) -> Run:
        """Start ``request`` in a worker thread; raises Busy when its model is working."""
        from ..cancel import CancelToken

        key = (request.model, request.fast)
        with self._lock:
            if key in self._busy:
                raise Busy(
                    f"busy: run {self._busy[key]} is working on {request.model}; wait for it "
                    "to finish or cancel it (one attribution at a time per model)"
                )
            run = Run(next(self._ids), request, CancelToken())
            self._busy[key] = run.id
            self._runs[run.id] = run
            self._forget_old_runs()
        threading.Thread(target=self._work, args=(run,), name=f"pyllmattr-run-{run.id}").start()
        return run

    def get(self, run_id: int) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def cancel(self, run_id: int) -> Run | None:
        run = self.get(run_id)
        if run is not None and not run.finished:
            run.cancel.cancel()
        return run

    def wait(self, run_id: int, timeout: float | None = None) -> Run | None:
        """Block until the run has finished (for scripts and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (run := self.get(run_id)) is not None and not run.finished:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return run

    def close(self) -> None:
        """Cancel every run, wait for them, and free the models."""
        with self._lock:
            running = [r for r in self._runs.values() if not r.finished]
        for run in running:
            run.cancel.cancel()
        for run in running:
            self.wait(run.id)
        with self._lock:
            models, self._models = list(self._models.values()), OrderedDict()
        for model in models:
            model.close()

    # ------------------------------------------------------------ the worker
    def _work(self, run: Run) -> None:
        import pyllmattr as pla

        key = (run.request.model, run.request.fast)
        try:
            run.state = "loading"
            model = self._model(key)
            if run.cancel.cancelled:  # cancelled while the model loaded
                raise pla.Cancelled("cancelled")
            run.result = self._attribute(run, model)
            run.state = "done"
        except pla.Cancelled:
            run.state, run.error = "cancelled", "cancelled"
        except (ValueError, RuntimeError, ImportError, OSError) as exc:
            run.state, run.error = "error", " ".join(str(exc).split()) or type(exc).__name__
        except Exception as exc:  # never let a run take the server down; show what happened
            run.state, run.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            run.seconds = time.monotonic() - run.started
            with self._lock:
                self._busy.pop(key, None)

    def _attribute(self, run: Run, model: Any) -> Any:
        from .. import chat as chat_prompts

        request = run.request
        inp = request.make_input(model)
        target: Any = request.target
        if target is None:  # generate it here, so that Cancel also stops the generation
            run.state = "generating"
            settings = chat_prompts.chat_options(request.chat)
            prompt = chat_prompts.encode(inp, model, settings).reference_ids
            target = model.generate(
                prompt, request.max_new_tokens, progress=run.progress, cancel=run.cancel
            )
            if not target:
                raise ValueError("the model generated no target (it stopped at once); give one")
        run.state, run.done, run.total = "scoring", 0, 0
        method = page_methods()[request.method](model)
        return method.attribute(
            inp,
            target=target,
            seed=request.seed,
            num_trials=request.num_trials,
            progress=run.progress,
            cancel=run.cancel,
            chat=request.chat,
            **request.options,
        )

    def _model(self, key: tuple[str, bool]) -> Any:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        model = self._load(*key)  # outside the lock: loading takes a while
        with self._lock:
            self._models[key] = model
            idle = [k for k in self._models if k not in self._busy and k != key]
            while len(self._models) > MAX_LOADED_MODELS and idle:
                self._models.pop(idle.pop(0)).close()
        return model

    def _forget_old_runs(self) -> None:
        finished = [i for i, r in self._runs.items() if r.finished]
        while len(self._runs) > MAX_KEPT_RUNS and finished:
            del self._runs[finished.pop(0)]
