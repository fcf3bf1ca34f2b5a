"""Dropout masks drawn in numpy from a seed, the same numbers for every backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gx.distributed import World


class MaskSource:
    """Dropout masks drawn from gx's seeded numpy RNG, so both backends drop the same elements.

    A mask holds 0 or 1/(1-p) (as float32); dropout is ``x * mask``. In a run of several
    processes each holds a slice of the batch: every process draws the mask of the global batch
    and keeps its own rows, so the masks equal those of one process training the whole batch.
    """

    def __init__(self, seed: int | Sequence[int], world: World = World()) -> None:
        self.rng = np.random.default_rng(seed)
        self.world = world

    def mask(self, shape: Sequence[int], p: float) -> np.ndarray:
        rows, *rest = shape
        drawn = self.rng.random((rows * self.world.size, *rest), dtype=np.float32)
        keep = self.world.take(drawn) >= np.float32(p)
        return keep.astype(np.float32) * np.float32(1.0 / (1.0 - p))

    def channel_mask(self, shape: Sequence[int], p: float) -> np.ndarray:
        """A mask that drops whole channels of images (N, C, H, W): one draw per sample and
        channel, shaped (N, C, 1, 1) to broadcast over height and width (dropout2d)."""
        rows, channels, *_ = shape
        return self.mask((rows, channels, 1, 1), p)

    def get_state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = dict(state)
