"""An exponential moving average of the generator's weights, kept in numpy by the core.

The average starts as G's initial weights. After every step that trains G (step t, counted
from 1)::

    average = weights                                      while t <= start
    average = decay * average + (1 - decay) * weights      after that

for each trainable parameter, in float32. Batch-norm statistics are not averaged: the average
takes G's current running statistics, as most GAN codebases do. Computed from the weights both
backends hand over as numpy, the average is one computation for both: as close between them as
the weights are. Sampling (grids, ``gx generate``, strips, eval, export) uses the average when a
run keeps one; checkpoints save it as ``generator_ema.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class WeightAverage:
    def __init__(
        self, decay: float, start: int, parameters: set[str], initial: Mapping[str, np.ndarray]
    ) -> None:
        self.decay, self.start, self.parameters = np.float32(decay), start, parameters
        self.load(initial)

    def update(self, weights: Mapping[str, np.ndarray], step: int) -> None:
        """Fold in G's weights after its update at ``step`` (1-based)."""
        if step <= self.start:
            self.load(weights)
            return
        keep, take = self.decay, np.float32(1) - self.decay
        for key, value in weights.items():
            if key in self.parameters:
                average = self.weights[key]
                average *= keep
                average += take * value
            else:
                self.weights[key] = np.array(value, np.float32)

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights = {key: np.array(value, np.float32) for key, value in weights.items()}
