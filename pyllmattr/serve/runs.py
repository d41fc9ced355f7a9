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

from .._warnings import collected
from .history import History, SavedRun
from .requests import RunRequest

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

    ``form`` is the request as the page sent it (the page rebuilds its history from
    it); ``request`` is None for a run read back from the history folder.

    Example:
        >>> run = runs.start(request)  # doctest: +SKIP
        >>> runs.wait(run.id).state, run.result.top_features(3)  # doctest: +SKIP
        ('done', [('include', 10.49), ('interests', 2.45), ('personal', 1.34)])
    """

    id: int
    model: str
    form: dict[str, Any]
    request: RunRequest | None = None
    cancel: Any = None
    # queued, loading, generating, scoring, evaluating, done, error, cancelled
    state: str = "queued"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    result: Any = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what the page should say besides

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
            "model": self.model,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "seconds": round(elapsed, 3),
            "error": self.error,
            "notes": list(self.notes),
        }

    def summary(self) -> dict[str, Any]:
        """The status, the page's request and, once done, what the history lists."""
        out = {**self.status(), "form": self.form}
        if self.state == "done":
            out["method"] = self.result.method
            out["output"] = "".join(self.result.output_tokens)
        return out


class Runs:
    """Starts runs in worker threads and keeps their state.

    ``load(ref, method_class, fast)`` opens the model a method runs on
    (``frontend.load_model``: PyTorch for gradients, llama.cpp otherwise). With a
    ``history`` folder, finished runs are saved there and the saved ones are read back
    now (the newest :data:`MAX_KEPT_RUNS`); ``problems`` lists files that could not be.

    Example:
        >>> runs = Runs(load=lambda ref, cls, fast: pla.load_gguf(ref))  # doctest: +SKIP
        >>> run = runs.start(parse_request({"prompt": "Hi there"}, "default"))  # doctest: +SKIP
    """

    def __init__(self, load: Callable[[str, Any, bool], Any], history: History | None = None):
        self._load = load
        self._history = history
        self._lock = threading.Lock()
        self._runs: OrderedDict[int, Run] = OrderedDict()
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._busy: dict[tuple[str, str], int] = {}  # model key -> the run working on it
        self.problems: list[str] = []
        first = 1
        if history is not None:
            saved, self.problems = history.load()
            for old in saved[-MAX_KEPT_RUNS:]:
                self._runs[old.id] = Run(
                    old.id, old.model, old.form, state="done", seconds=old.seconds,
                    result=old.result, notes=old.notes,
                )  # fmt: skip
            first = 1 + max((old.id for old in saved), default=0)
        self._ids = itertools.count(first)

    def start(self, request: RunRequest) -> Run:
        """Start ``request`` in a worker thread; raises Busy when its model is working."""
        from ..cancel import CancelToken

        key = (request.model, request.engine)
        with self._lock:
            if key in self._busy:
                raise Busy(
                    f"busy: run {self._busy[key]} is working on {request.model}; wait for it "
                    "to finish or cancel it (one attribution at a time per model)"
                )
            run = Run(next(self._ids), request.model, request.form, request, CancelToken())
            self._busy[key] = run.id
            self._runs[run.id] = run
            self._forget_old_runs()
        threading.Thread(target=self._work, args=(run,), name=f"pyllmattr-run-{run.id}").start()
        return run

    def get(self, run_id: int) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def kept(self) -> list[Run]:
        """The runs kept, oldest first."""
        with self._lock:
            return list(self._runs.values())

    def cancel(self, run_id: int) -> Run | None:
        run = self.get(run_id)
        if run is not None and not run.finished:
            run.cancel.cancel()
        return run

    def delete(self, run_id: int) -> tuple[Run | None, str | None]:
        """Forget a finished run, and its file in the history folder: (the run, or None
        when there is none; why its file stays, or None). Busy while it works."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return None, None
            if not run.finished:
                raise Busy(f"run {run_id} is still working: cancel it, then delete it")
            del self._runs[run_id]
        return run, None if self._history is None else self._history.forget(run_id)

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

        request = run.request
        assert request is not None  # a run read back from the history never works
        key = (request.model, request.engine)
        try:
            run.state = "loading"
            model = self._model(key, request)
            if run.cancel.cancelled:  # cancelled while the model loaded
                raise pla.Cancelled("cancelled")
            with collected() as warned:  # the library's warnings (not converged, ...)
                run.result = self._attribute(run, model)
                if request.evaluate:
                    self._evaluate(run, model)
            run.notes[:0] = warned
            run.seconds = time.monotonic() - run.started
            self._save(run)
            run.state = "done"
        except pla.Cancelled:
            run.state, run.error = "cancelled", "cancelled"
        except (ValueError, RuntimeError, ImportError, OSError) as exc:
            run.state, run.error = "error", " ".join(str(exc).split()) or type(exc).__name__
        except Exception as exc:  # never let a run take the server down; show what happened
            run.state, run.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            if run.seconds is None:
                run.seconds = time.monotonic() - run.started
            with self._lock:
                self._busy.pop(key, None)

    def _attribute(self, run: Run, model: Any) -> Any:
        from .. import chat as chat_prompts

        request = run.request
        assert request is not None
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
        method = request.method_class(model)
        return method.attribute(
            inp,
            target=target,
            contrast=request.contrast,
            seed=request.seed,
            num_trials=request.num_trials,
            progress=run.progress,
            cancel=run.cancel,
            chat=request.chat,
            **request.options,
        )

    def _evaluate(self, run: Run, model: Any) -> None:
        """Measure the result's faithfulness on the model that computed it (the HTML view
        then shows its curves). A failure or a Cancel here keeps the attributions."""
        import pyllmattr as pla

        assert run.request is not None
        run.state, run.done, run.total = "evaluating", 0, 0
        try:
            pla.evaluate(
                run.result, model, seed=run.request.seed, progress=run.progress,
                cancel=run.cancel,
            )  # fmt: skip
        except pla.Cancelled:
            run.notes.append("cancelled before the faithfulness was measured")
        except (ValueError, RuntimeError) as exc:
            run.notes.append(f"faithfulness not measured: {' '.join(str(exc).split())}")

    def _save(self, run: Run) -> None:
        """Keep a finished run in the history folder (a failure to write is noted, and
        the run is still shown)."""
        if self._history is None:
            return
        saved = SavedRun(run.id, run.model, run.form, run.seconds or 0.0, run.result, run.notes)
        try:
            self._history.save(saved)
        except OSError as exc:
            run.notes.append(f"not saved to the history folder: {exc.strerror or exc}")

    def _model(self, key: tuple[str, str], request: RunRequest) -> Any:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        # outside the lock: loading takes a while
        model = self._load(request.model, request.method_class, request.fast)
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
