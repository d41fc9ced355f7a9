"""The explorer's runs on disk (``pyllmattr serve --history DIR``): one JSON file per
finished run, read back when the server starts, so the history survives a restart.

A file is the result as ``AttributionResult.to_json`` writes it, with one more key,
``"explorer"``: the run's id, the model, the page's request, the seconds it took and
the notes shown beside it (the library's warnings).
``pla.AttributionResult.from_json`` reads such a file as it is (it ignores keys that
are no field), so a run saved by the explorer is also a result file for scripts.

Example:
    >>> history = History("~/pyllmattr-runs")  # doctest: +SKIP
    >>> runs, problems = history.load()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results import AttributionResult

KEY = "explorer"  # the run's own fields, beside the result's
PATTERN = "run-*.json"


@dataclass
class SavedRun:
    """A finished run as its file holds it.

    Example:
        >>> SavedRun(3, "default", {"prompt": "Hi"}, 1.5, result).id  # doctest: +SKIP
        3
    """

    id: int
    model: str
    form: dict[str, Any]
    seconds: float
    result: AttributionResult
    notes: list[str] = field(default_factory=list)  # what the page said beside the result


class History:
    """A folder of saved runs; checked when made, so a folder the server cannot read or
    write is an error at start rather than a run that silently is not kept.

    Example:
        >>> history = History(tmp_path / "runs")  # doctest: +SKIP
        >>> history.save(SavedRun(1, "default", form, 0.8, result))  # doctest: +SKIP
        >>> [run.id for run in history.load()[0]]  # doctest: +SKIP
        [1]
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = _usable_folder(Path(folder).expanduser())

    def file(self, run_id: int) -> Path:
        return self.folder / f"run-{run_id:06d}.json"

    def load(self) -> tuple[list[SavedRun], list[str]]:
        """The saved runs in the order of their ids, and a line for each file that could
        not be read (skipped: one damaged file does not cost the others)."""
        runs, problems = [], []
        for file in sorted(self.folder.glob(PATTERN)):
            try:
                runs.append(_read(file))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{file}: {' '.join(str(exc).split()) or type(exc).__name__}")
        runs.sort(key=lambda run: run.id)
        return runs, problems

    def forget(self, run_id: int) -> str | None:
        """Delete the run's file; a line saying why it could not be, or None."""
        try:
            self.file(run_id).unlink(missing_ok=True)
        except OSError as exc:
            return f"{self.file(run_id)}: {exc.strerror or exc}"
        return None

    def save(self, run: SavedRun) -> Path:
        """Write ``run`` to its file (whole or not at all: written beside it, then renamed)."""
        data = run.result.to_dict()
        data[KEY] = {
            "id": run.id, "model": run.model, "form": run.form, "seconds": run.seconds,
            "notes": run.notes,
        }  # fmt: skip
        target = self.file(run.id)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".run-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def _read(file: Path) -> SavedRun:
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get(KEY), dict):
        raise ValueError(f'not a run saved by pyllmattr serve (no "{KEY}" section)')
    run = data[KEY]
    form = run.get("form")
    if not isinstance(run.get("id"), int) or not isinstance(form, dict):
        raise ValueError(f'its "{KEY}" section lacks the run\'s id or request')
    return SavedRun(
        id=run["id"],
        model=str(run.get("model", "")),
        form=form,
        seconds=float(run.get("seconds") or 0.0),
        result=AttributionResult.from_dict(data),
        notes=[str(note) for note in run.get("notes") or []],
    )


def _usable_folder(folder: Path) -> Path:
    """``folder``, created if missing; ValueError saying what is wrong when the server
    could not list it or write a file into it."""
    where = f"--history {folder}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{where}: not a folder (a file of that name is there); give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{where}: cannot create the folder ({exc.strerror or exc})") from None
    try:
        os.listdir(folder)  # raises where the folder cannot be read (Path.glob would not)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".pyllmattr-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(
            f"{where}: the server cannot read and write files there ({exc.strerror or exc}); "
            "give a folder you own"
        ) from None
    return folder.resolve()
