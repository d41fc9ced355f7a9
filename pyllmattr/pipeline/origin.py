"""Where a result came from: what evaluating it later needs to perturb its input again.

The pipeline attaches an :class:`Origin` to every result it builds (``result._origin``,
not a field: it holds the input object, which is not serialized). ``pla.evaluate``
reads it to remove the result's features exactly as the method did. A result loaded
from JSON, pickled or copied has none; ``pla.evaluate(result, model, inp=...)`` then
rebuilds it from the result's fields and the input given.

Example:
    >>> result = pla.FeatureAblation(model).attribute(inp, target=" lawyer")  # doctest: +SKIP
    >>> origin_of(result).source is inp  # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objectives import Objective


@dataclass(frozen=True)
class Origin:
    """The input, objective and options a result was computed from.

    ``options`` are the method's own (for gradient methods, ``baselines`` says what a
    removed feature becomes); ``reference_ids`` the unperturbed prompt's tokens on the
    model that computed it (a model that tokenizes it differently cannot evaluate it).
    """

    source: Any  # the InterpretableInput as given
    objective: Objective
    chat: dict[str, Any] | None
    options: dict[str, Any] = field(default_factory=dict)
    gradient: bool = False
    reference_ids: tuple[int, ...] | None = None

    # Copies and pickles of a result leave the origin behind: the input may hold a
    # model (TextTokenInput), which neither copies nor pickles.
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (type(None), ())

    def __copy__(self) -> Origin:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Origin:
        return self


def attach_origin(result: Any, job: Any, settings: Any, method: Any) -> Any:
    """``result`` with its origin attached (the pipeline's last step)."""
    from ..methods.gradient import GradientMethod  # the pipeline knows no method family

    result._origin = Origin(
        source=job.source,
        objective=job.objective,
        chat=settings.chat,
        options=dict(settings.options),
        gradient=isinstance(method, GradientMethod),
        reference_ids=tuple(job.encoding.reference_ids),
    )
    return result


def origin_of(result: Any) -> Origin | None:
    """The origin the pipeline attached to ``result`` (None when it has none)."""
    return getattr(result, "_origin", None)
