"""The prompt sets of examples/data/ as attribution inputs: people, few-shot, context QA.

* ``people``: ``people_templates.jsonl`` (name, pronoun, city, state, job slots), each
  slot group's baseline the first of its alternatives that keeps the prompt's token
  count, so that integrated gradients has a straight path between the same two
  prompts the perturbation methods compare (templates where some group has no such
  alternative are left out: 14 of 34 keep all five slots); target: the model's greedy
  continuation;
* ``few-shot``: the country-capital queries of ``few_shot.jsonl`` after the eight
  examples of ``examples/few_shot.py`` (one wrong, one off the task), each example a
  feature removed when absent; target: the capital;
* ``context``: ``retrieval_documents.jsonl`` (study 6: four short invented documents,
  twelve sentences, a question), a ``ContextInput`` over the sentences, each document
  headed "Document k:"; target: the recorded answer. The 1,000-token cases of
  ``context_qa.jsonl`` (56-70 sentences) cost minutes per method on a 2-core machine;
  ``context_items(..., path=...)`` reads them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyllmattr as pla
from harness import REPO

DATA = REPO / "examples" / "data"
# examples/few_shot.py's prompt (bench/ cannot import examples/): six sound examples,
# a wrong one and one off the task.
FEW_SHOT_EXAMPLES = [
    "France: Paris",
    "Japan: Tokyo",
    "Egypt: Cairo",
    "Canada: Ottawa",
    "Spain: Tokyo",
    "Kenya: Nairobi",
    "Peru: Lima",
    "I like turtles.",
]
RETRIEVAL_TEMPLATE = (
    "Answer the question using the documents below.\n\n{context}\n\nQuestion: {query}\nAnswer:"
)
SETS = ("people", "few-shot", "context")


@dataclass
class Item:
    """One input of a prompt set with its target (text, or token ids)."""

    set: str
    id: str
    inp: Any
    target: str | list[int]

    @property
    def n_features(self) -> int:
        return int(self.inp.n_features)


def read_jsonl(name: str | Path) -> list[dict[str, Any]]:
    path = Path(name) if Path(name).is_absolute() else DATA / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def aligned_baselines(record: dict[str, Any], model: Any) -> dict[str, str] | None:
    """Per slot group, the first alternative whose swap alone keeps the prompt's token
    count (None when a group has none): a same-length path for gradient methods."""
    values, template = record["values"], record["template"]
    n_tokens = len(model.tokenize(template.format(**values)))
    chosen: dict[str, str] = {}
    for group, options in record["alternatives"].items():
        keys = group.split(",")
        for option in options:
            option = option if isinstance(option, list) else [option]
            swapped = {**values, **dict(zip(keys, option, strict=True))}
            if len(model.tokenize(template.format(**swapped))) == n_tokens:
                chosen.update(zip(keys, option, strict=True))
                break
        else:
            return None
    return chosen


def first_alternatives(record: dict[str, Any]) -> dict[str, str]:
    """The first alternative of every slot group (studies 2 and 4): Dave/His -> Sarah/Her."""
    out: dict[str, str] = {}
    for group, options in record["alternatives"].items():
        first = options[0] if isinstance(options[0], list) else [options[0]]
        out.update(zip(group.split(","), first, strict=True))
    return out


def greedy(model: Any, prompt: str, n_tokens: int) -> list[int]:
    return list(model.generate(model.tokenize(prompt), max_new_tokens=n_tokens))


def people_items(model: Any, n: int | None, n_target: int = 4) -> list[Item]:
    """People templates with same-length baselines; target: the greedy continuation."""
    items = []
    for record in read_jsonl("people_templates.jsonl"):
        baselines = aligned_baselines(record, model)
        if baselines is None:
            continue
        inp = pla.TextTemplateInput(record["template"], record["values"], baselines=baselines)
        target = greedy(model, record["template"].format(**record["values"]), n_target)
        items.append(Item("people", record["id"], inp, target))
        if n is not None and len(items) == n:
            break
    return items


def few_shot_items(n: int | None) -> list[Item]:
    """Eight examples (features, removed when absent), then the query as fixed text."""
    slots = {f"e{i}": f"{text}\n" for i, text in enumerate(FEW_SHOT_EXAMPLES)}
    head = "".join("{" + key + "}" for key in slots)
    items = []
    for query in read_jsonl("few_shot.jsonl")[:n]:
        inp = pla.TextTemplateInput(head + query["country"] + ":", slots)
        items.append(Item("few-shot", query["id"], inp, " " + query["capital"]))
    return items


def context_items(n: int | None, path: str | Path = "retrieval_documents.jsonl") -> list[Item]:
    """Sentences of headed documents as features; the question after them is fixed."""
    items = []
    for record in read_jsonl(path)[:n]:
        headed = [f"Document {k + 1}: {doc}" for k, doc in enumerate(record["documents"])]
        inp = pla.ContextInput(headed, record["question"], template=RETRIEVAL_TEMPLATE)
        items.append(Item("context", record["id"], inp, record["answer"]))
    return items


def load_set(name: str, model: Any, n: int | None) -> list[Item]:
    if name == "people":
        return people_items(model, n)
    if name == "few-shot":
        return few_shot_items(n)
    if name == "context":
        return context_items(n)
    raise ValueError(f"unknown prompt set {name!r}; use one of {list(SETS)}")
