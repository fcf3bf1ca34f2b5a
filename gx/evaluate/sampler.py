"""A trained generator from a run folder, compiled in any backend, producing numpy images.

A thin wrapper over gx.tools.generate (which compiles the checkpoint's generator in eval mode), plus
what evaluation needs to know about the run: its data settings and its step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gx.backends.base import Backend
from gx.checkpoint import Checkpoint, find_checkpoint, load_checkpoint
from gx.models import GanModel
from gx.tools.generate import compile_generator, generate

# Images per forward pass: bounds memory whatever the number of images asked for.
SAMPLE_BATCH = 500


def run_folder(path: str | Path) -> Path:
    """The run folder for a run folder or the checkpoint folder inside it."""
    checkpoint = find_checkpoint(path)
    if checkpoint.name == "checkpoint" and (checkpoint.parent / "config.yaml").is_file():
        return checkpoint.parent
    return Path(path)


def run_data_settings(path: str | Path) -> tuple[str, str | None]:
    """(dataset, data.root) from the run's config.yaml; ('mnist', None) when it has none."""
    config = run_folder(path) / "config.yaml"
    data: dict[str, Any] = {}
    if config.is_file():
        loaded = yaml.safe_load(config.read_text()) or {}
        data = loaded.get("data") or {}
    return data.get("dataset", "mnist"), data.get("root")


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
        """None for ``backend_name``: as ``load_generator`` chooses."""
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
        return generate(
            self.backend, self.module, np.asarray(noise, np.float32), labels, SAMPLE_BATCH
        )
