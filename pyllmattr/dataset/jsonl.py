"""JSON-lines files of ``pyllmattr attribute-dataset``: inputs in, results out.

Results are appended one line per input (``{"id": ..., **result.to_dict()}``), each
written whole and flushed, so a killed run leaves complete lines and at most one
truncated last line; :func:`read_done` drops that line, and a re-run skips the ids
already written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._checks import WrongTypeError
from ..results import AttributionResult
from .records import Task, parse_record, prefix_text, record_contrast


@dataclass
class Dataset:
    """The usable lines of an input file as tasks (``index`` = line number), and the
    messages of the lines that are not."""

    tasks: list[Task] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def read_inputs(path: Path, *, features: str = "word", template: str | None = None) -> Dataset:
    """Parse every line; a bad line becomes a message ``FILE:LINE: why`` instead of a task.

    An input without "id" gets its line number. Raises ValueError (before any work)
    when two lines have the same id.
    """
    dataset = Dataset()
    first_line: dict[Any, int] = {}
    duplicates: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                task = _task(line, number, features, template)
            except ValueError as exc:
                dataset.malformed.append(f"{path}:{number}: {' '.join(str(exc).split())}")
                continue
            key = _id_key(task.id)
            if key in first_line:
                duplicates.append(f"id {task.id!r} on lines {first_line[key]} and {number}")
            else:
                first_line[key] = number
            dataset.tasks.append(task)
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else "")
        raise ValueError(f"{path}: duplicate ids ({shown}); give every line its own id")
    return dataset


def read_done(path: Path) -> dict[Any, dict[str, Any]]:
    """The results already in ``path`` by :func:`id_key`. An unterminated last line (a
    killed run) is cut off the file, or ended if it is a whole result. Raises ValueError
    for a complete line that is not a result."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    *complete, tail = data.split(b"\n")
    done: dict[Any, dict[str, Any]] = {}
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        row = _result_row(raw)
        if row is None:
            raise ValueError(
                f"{path}:{number} is not a result line; remove it or write to another --out"
            )
        done[_id_key(row["id"])] = row
    if tail.strip():
        row = _result_row(tail)
        if row is None:
            _truncate(path, len(data) - len(tail))
        else:
            _append_newline(path)
            done[_id_key(row["id"])] = row
    return done


def open_results(path: Path) -> IO[str]:
    return open(path, "a", encoding="utf-8")


def write_result(out: IO[str], task_id: Any, result: AttributionResult) -> None:
    """One whole line, flushed to the operating system (a crash of this process after
    this call loses nothing)."""
    row = {"id": task_id, **result.to_dict()}
    out.write(json.dumps(row, ensure_ascii=False, allow_nan=True) + "\n")
    out.flush()


def iter_results(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def id_key(task_id: Any) -> Any:
    return _id_key(task_id)


# ---------------------------------------------------------------- helpers


def _task(line: str, number: int, features: str, template: str | None) -> Task:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(record, dict) and "id" in record:
        task_id = record["id"]
        if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
            raise WrongTypeError(f'"id" must be a string or an integer, got {task_id!r}')
    else:
        task_id = number
    inp, target = parse_record(record, features=features, template=template)
    return Task(number, task_id, inp, target, prefix_text(inp), record_contrast(record))


def _id_key(task_id: Any) -> tuple[str, Any]:
    # 1 and "1" are different ids (JSON keeps them apart); True is not an id
    return (type(task_id).__name__, task_id)


def _result_row(raw: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(row, dict) or "id" not in row or "seq_attr" not in row:
        return None
    return row


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def _append_newline(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\n")
