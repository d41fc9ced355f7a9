"""Which attribution to believe: faithfulness of results to the model.

:func:`evaluate` measures, for any result whose features can be removed, how well
its attributions predict what removing features does (deletion and insertion curves
against random orders, ERASER's comprehensiveness and sufficiency, the linear
datamodeling score), in one engine call. See :mod:`.faithfulness`.

Example:
    >>> faith = pla.evaluate(result, model, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from .faithfulness import DEFAULT_FRACTIONS, Faithfulness, evaluate

__all__ = ["DEFAULT_FRACTIONS", "Faithfulness", "evaluate"]
