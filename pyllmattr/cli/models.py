"""``pyllmattr models``: the GGUF models found on this machine, read from their headers."""

from __future__ import annotations

import argparse
import json
from typing import Any

COLUMNS = ("reference", "architecture", "parameters", "quantization", "size", "context")


def model_rows(models: list[Any]) -> list[dict[str, Any]]:
    """One dict per model: its reference and what its GGUF header says (or why it cannot)."""
    from ..models.gguf_header import format_params, format_size

    rows = []
    for model in models:
        row: dict[str, Any] = {"reference": model.ref, "source": model.source}
        row["path"] = str(model.path)
        try:
            info = model.info()
        except ValueError as exc:
            row["error"] = str(exc)
            rows.append(row)
            continue
        row.update(
            architecture=info.architecture,
            name=info.name,
            n_params=info.n_params,
            parameters=format_params(info.n_params),
            quantization=info.quantization,
            size_bytes=info.size_bytes,
            size=format_size(info.size_bytes),
            context=info.context_length,
            chat_template=info.chat_template is not None,
        )
        rows.append(row)
    return rows


def list_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..models import refs

    chosen = args.source or [refs.DEFAULT_REF, *refs.SCHEMES]
    schemes = tuple(s for s in refs.SCHEMES if s in chosen)
    rows = model_rows(refs.find_models(schemes, include_default=refs.DEFAULT_REF in chosen))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows, paths=args.paths) if rows else "no GGUF models found")
    print()
    print("looked in:")
    for scheme in refs.SCHEMES:
        what, dirs = refs.source_dirs(scheme)
        print(f"  {what + ':':<24} {', '.join(str(d) for d in dirs)}")
    return 0


def format_table(rows: list[dict[str, Any]], paths: bool = False) -> str:
    """The models as an aligned text table (unreadable files show their error)."""
    columns = COLUMNS + (("path",) if paths else ())
    cells = [[_cell(row, c) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row, line in zip(rows, cells, strict=True):
        if "error" in row:
            lines.append(f"{line[0].ljust(widths[0])}  (unreadable: {row['error']})")
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "?" if value is None else str(value)
