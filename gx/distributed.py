"""Data-parallel runs: which process this is, and its share of every batch. No framework here.

One definition for every backend and launcher: ``train.batch_size`` is the global batch. Every
process derives the same permutation, noise, labels and dropout masks from the seed (gx's numpy
streams) and takes a contiguous 1/N slice of each; gradients and batch-norm sums are then
combined by the backend's own all-reduce. So N processes compute what one process computes on
the whole batch, up to rounding.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gx.errors import GxError

# Set by gx's launcher (gx.launch); a hand-made launch may set it too. Creating this file asks
# every process to stop after the current step and save, as Ctrl-C does for one process; gx's
# launcher writes the name of the signal it received into it (SIGINT, SIGTERM, SIGUSR1).
STOP_FILE_VARIABLE = "GX_STOP_FILE"


@dataclass(frozen=True)
class World:
    """This process's place in a run of ``size`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # which GPU of this machine the process uses
    launcher: str = ""  # "torchrun" or "mpirun" as seen in the environment; "" for one process

    @property
    def lead(self) -> bool:
        """Rank 0 alone writes the run folder."""
        return self.rank == 0

    def share(self, rows: int) -> slice:
        """This process's contiguous slice of a global batch of ``rows``."""
        part = rows // self.size
        return slice(self.rank * part, (self.rank + 1) * part)

    def take(self, array: np.ndarray) -> np.ndarray:
        return array[self.share(len(array))]

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise GxError(
                f"train.batch_size {batch_size} cannot be split evenly over {self.size} "
                f"processes; it is the global batch, so use a multiple of {self.size} "
                f"(e.g. --set train.batch_size={batch_size // self.size * self.size or self.size})"
            )

    def stop_requested(self) -> int | None:
        """The signal the stop file names (SIGINT for an empty one), or None without one."""
        path = os.environ.get(STOP_FILE_VARIABLE)
        if not path:
            return None
        try:
            named = Path(path).read_text().strip()
        except OSError:
            return None
        return getattr(signal, named, signal.SIGINT) if named.startswith("SIG") else signal.SIGINT


def _int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def current_world() -> World:
    """The world this process was started in: torchrun's RANK/WORLD_SIZE/LOCAL_RANK variables,
    or OpenMPI's OMPI_COMM_WORLD_* ones; one process when neither is set."""
    if _int("WORLD_SIZE") is not None and _int("RANK") is not None:
        return World(
            _int("RANK") or 0, _int("WORLD_SIZE") or 1, _int("LOCAL_RANK") or 0, "torchrun"
        )
    if _int("OMPI_COMM_WORLD_SIZE") is not None:
        return World(
            _int("OMPI_COMM_WORLD_RANK") or 0,
            _int("OMPI_COMM_WORLD_SIZE") or 1,
            _int("OMPI_COMM_WORLD_LOCAL_RANK") or 0,
            "mpirun",
        )
    return World()
