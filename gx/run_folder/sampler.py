"""A run's generator, compiled in any backend, turning noise (and labels) into numpy images.

What gx generate, strip, eval and export draw from: the checkpoint's generator (the average of
its weights when the run kept one, train.ema_decay), in eval mode, on the backend that trained
it when installed, else on the installed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gx.backends import checkpoint_backend, get_backend
from gx.backends.base import Backend
from gx.checkpoint import Checkpoint, find_checkpoint, load_checkpoint
from gx.models import GanModel, middle_codes

# Images per forward pass: bounds memory whatever the number of images asked for.
SAMPLE_BATCH = 500


def load_generator(
    checkpoint_path: str | Path,
    backend_name: str | None = None,
    device: str = "auto",
    dtype: str = "float32",
) -> tuple[Backend, Any, GanModel]:
    """The checkpoint's generator compiled in ``backend_name`` (None: as the module says).

    ``dtype`` float64 (PyTorch only) computes the same images with almost no rounding: the
    reference a float32 result's rounding floor is measured against (gx.parity.agreement).
    """
    checkpoint = load_checkpoint(checkpoint_path)
    source = f"checkpoint '{find_checkpoint(checkpoint_path)}'"
    return compile_generator(checkpoint, source, backend_name, device, dtype)


def compile_generator(
    checkpoint: Checkpoint,
    source: str,
    backend_name: str | None = None,
    device: str = "auto",
    dtype: str = "float32",
) -> tuple[Backend, Any, GanModel]:
    """``load_generator`` for a checkpoint already loaded (and checked) from ``source``."""
    backend = get_backend(backend_name or checkpoint_backend(checkpoint.state), device, dtype)
    generator = backend.compile(checkpoint.model.generator, 0)
    backend.load_weights(
        generator, checkpoint.model.generator, checkpoint.sampling_generator, source
    )
    backend.set_training(generator, False)
    return backend, generator, checkpoint.model


def generate(
    backend: Backend,
    generator: Any,
    noise: np.ndarray,
    labels: np.ndarray | None,
    batch: int = SAMPLE_BATCH,
    codes: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] as numpy in the backend's float type (float32 unless
    asked otherwise), computed in batches without gradients; G's continuous codes, if it has
    any, are ``codes`` or else held at 0."""
    codes = middle_codes(generator.spec, len(noise)) if codes is None else codes
    parts = []
    with backend.no_grad():
        for start in range(0, len(noise), batch):
            rows = slice(start, start + batch)
            inputs = {"z": backend.tensor(noise[rows])}
            if labels is not None:
                inputs["label"] = backend.tensor(labels[rows])
            for name, values in codes.items():
                inputs[name] = backend.tensor(values[rows])
            parts.append(backend.numpy(generator(inputs)))
    return np.concatenate(parts)


@dataclass
class Sampler:
    """A checkpoint's generator, ready to turn noise (and labels) into images."""

    backend: Backend
    module: Any
    model: GanModel
    step: int | None

    @classmethod
    def from_run(
        cls, path: str | Path, backend_name: str | None = None, device: str = "auto"
    ) -> Sampler:
        """The generator of the run folder (or checkpoint folder) ``path``."""
        return cls.from_checkpoint(load_checkpoint(path), path, backend_name, device)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint,
        path: str | Path,
        backend_name: str | None = None,
        device: str = "auto",
    ) -> Sampler:
        """``from_run`` for the checkpoint of ``path``, already loaded."""
        source = f"checkpoint '{find_checkpoint(path)}'"
        backend, module, model = compile_generator(checkpoint, source, backend_name, device)
        return cls(backend, module, model, checkpoint.state.get("step"))

    def generate(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images (N, C, H, W) in [-1, 1] as float32, SAMPLE_BATCH at a time."""
        labels = labels if self.model.conditional else None
        return generate(self.backend, self.module, np.asarray(noise, np.float32), labels)
