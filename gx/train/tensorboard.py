"""TensorBoard event files for a run (``train.tensorboard: true``): ``tensorboard --logdir runs``.

Written with tensorboardX, which needs neither torch nor TensorFlow, so Jittor-only machines get
the same logs. What a run writes:

- ``train/<key>``: every number of a metrics.jsonl line, at its step;
- ``samples``: each sample grid, at the steps the PNGs are saved (``train.sample_every``);
- the resolved experiment as hyperparameters (``model.name``, ``train.batch_size``, ...), with
  the loss scalars as their metrics.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gx.errors import GxError

INSTALL_HINT = "pip install 'gx[tensorboard]'   (or: pip install tensorboardX)"
SCALAR_PREFIX = "train/"
SAMPLES_TAG = "samples"
# Step-record keys that are positions, not measurements.
NOT_SCALARS = ("step",)
HPARAM_METRICS = ("d_loss", "g_loss")


def require_tensorboard() -> None:
    """Fail before any file is written when the extra is missing."""
    if importlib.util.find_spec("tensorboardX") is None:
        raise GxError(
            "train.tensorboard is true but tensorboardX is not installed; install it "
            f"with: {INSTALL_HINT}, or set train.tensorboard=false"
        )


def _summary_writer_class() -> Any:
    """tensorboardX's SummaryWriter, imported without letting it import torch.

    tensorboardX tries ``import torch`` when loaded, only to accept torch tensors; gx hands it
    numpy, and a Jittor run must not load PyTorch.
    """
    hidden = "torch" not in sys.modules
    if hidden:
        sys.modules["torch"] = None  # type: ignore[assignment]  # makes ``import torch`` fail
    try:
        return importlib.import_module("tensorboardX").SummaryWriter
    finally:
        if hidden:
            del sys.modules["torch"]


def hyperparameters(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flat {'train.batch_size': 64, ...}: numbers, text and flags as they are, the rest as text."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(hyperparameters(value, name))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = "none" if value is None else value
        else:
            flat[name] = str(value)
    return flat


class TensorBoardLog:
    """One event file in the run folder, appended to as the run goes (resumed runs add a file)."""

    def __init__(self, folder: Path) -> None:
        require_tensorboard()
        self.writer = _summary_writer_class()(logdir=str(folder))

    def write_experiment(self, settings: Mapping[str, Any]) -> None:
        from tensorboardX.summary import hparams

        metrics = {SCALAR_PREFIX + key: 0.0 for key in HPARAM_METRICS}
        experiment, session_start, _ = hparams(hyperparameters(settings), metrics)
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(session_start)

    def write_step(self, record: Mapping[str, Any]) -> None:
        for key, value in record.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)):
                self.writer.add_scalar(SCALAR_PREFIX + key, value, record["step"])

    def write_samples(self, step: int, grid: np.ndarray) -> None:
        """``grid``: uint8 pixels, (H, W) grayscale or (H, W, 3) colour."""
        self.writer.add_image(
            SAMPLES_TAG, grid, step, dataformats="HW" if grid.ndim == 2 else "HWC"
        )

    def close(self) -> None:
        self.writer.close()
