"""Seeded minibatch order, computed in numpy so every backend sees exactly the same batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gx.errors import GxError


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches in one pass over n images (the incomplete last batch is dropped)."""
    if batch_size < 1:
        raise GxError(f"batch size {batch_size} must be at least 1. Fix: set a positive batch size")
    if batch_size > n:
        raise GxError(
            f"batch size {batch_size} is larger than the dataset, which has only {n} "
            f"images. Fix: use a batch size of at most {n}"
        )
    return n // batch_size


def batch_indices(n: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Image indices of every batch of an epoch: int64 (steps_per_epoch, batch_size).

    A permutation from np.random.default_rng([seed, epoch]): the same for a given seed and epoch,
    fresh each epoch, and independent of which framework trains. The incomplete last batch is
    dropped so every step has the same batch shape: batch norm statistics over a handful of
    images are noisy, and a changing shape would also make backends harder to compare step by step.
    """
    if seed < 0 or epoch < 0:
        raise GxError(f"seed {seed} and epoch {epoch} must not be negative. Fix: use a seed >= 0")
    steps = steps_per_epoch(n, batch_size)
    order = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    return order[: steps * batch_size].reshape(steps, batch_size)


@dataclass(frozen=True)
class Batch:
    """One step's images, as indices into the dataset."""

    step: int  # 0-based, counted over the whole training
    epoch: int
    indices: np.ndarray  # int64 (batch_size,)
    starts_epoch: bool  # the first batch of an epoch, or the first one after a resume


def batches(
    n: int, batch_size: int, seed: int, start: int = 0, stop: int | None = None
) -> Iterator[Batch]:
    """The batches of steps ``start`` .. ``stop - 1`` (endless when ``stop`` is None): each epoch
    in the order ``batch_indices`` draws for it, so a run resumed at any step sees the batches it
    would have seen. The one loop over epochs and batches that training, parity and bench share.
    """
    per_epoch = steps_per_epoch(n, batch_size)
    order: np.ndarray | None = None
    step = start
    while stop is None or step < stop:
        epoch, position = divmod(step, per_epoch)
        starts_epoch = order is None or position == 0
        if starts_epoch:
            order = batch_indices(n, batch_size, seed, epoch)
        assert order is not None
        yield Batch(step, epoch, order[position], starts_epoch)
        step += 1
