"""What every interpretable input provides to the attribution methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

Segment = tuple[str, "int | None"]  # a piece of the prompt and the feature it belongs to


@dataclass
class Encoding:
    """An input bound to a model's tokenizer: turns feature masks into token sequences.

    ``masks`` rows say which features keep their value (True) and which take their
    baseline (False).
    """

    labels: list[str]
    reference_ids: list[int]
    segments: list[Segment]  # the unperturbed prompt, piece by piece
    feature_tokens: list[list[int]]  # the reference prompt's tokens of each feature
    render: Any  # callable(mask: np.ndarray, rng) -> list[int]
    # Positions in reference_ids of each feature's tokens (a token that straddles two
    # features belongs to both). Gradient methods attribute tokens, then sum them per feature.
    feature_positions: list[list[int]] | None = None

    @property
    def n_features(self) -> int:
        return len(self.labels)

    def sequences(self, masks: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        return [self.render(row, rng) for row in masks]


class InterpretableInput(ABC):
    """A prompt split into features that attribution methods switch on and off."""

    @abstractmethod
    def encode(self, model: Any, add_special: bool = True) -> Encoding:
        """Bind to ``model``'s tokenizer; raises ValueError when features are unusable.

        ``add_special=False`` leaves out the BOS token: the text goes inside a chat
        template (pyllmattr.chat), which brings its own.
        """
