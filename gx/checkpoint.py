"""Backend-neutral checkpoints: safetensors files of numpy arrays plus one JSON file.

A checkpoint folder holds::

    generator.safetensors      parameters and batch-norm statistics, keyed 'layer.param'
    discriminator.safetensors
    optimizer_g.safetensors    optimizer slots keyed 'layer.param.slot', and 'step'
    optimizer_d.safetensors
    generator_ema.safetensors  only when the run keeps an average of G's weights (gx.train.ema)
    optimizer_info.safetensors only when the run trains InfoGAN's information loss: the slots
                               of its optimizer over G and D, keyed 'generator.layer.param.slot'
                               and 'discriminator.layer.param.slot'
    state.json                 the model specs, step, epoch, RNG states, which backend wrote it,
                               and a loss's own state where it keeps one (BEGAN's k: loss_state)

Loading reads arrays and JSON only; nothing in a checkpoint is ever executed. Any backend can
load what any backend wrote.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from gx.errors import GxError
from gx.models import GanModel, model_from_dict

FORMAT = "gx-checkpoint-1"
_ARRAY_FILES = ("generator", "discriminator", "optimizer_g", "optimizer_d")
_OPTIONAL_ARRAY_FILES = ("generator_ema", "optimizer_info")


@dataclass
class Checkpoint:
    model: GanModel
    generator: dict[str, np.ndarray]
    discriminator: dict[str, np.ndarray]
    optimizer_g: dict[str, np.ndarray]
    optimizer_d: dict[str, np.ndarray]
    state: dict[str, Any]  # step, epoch, rng states, experiment name, backend, ...
    generator_ema: dict[str, np.ndarray] | None = None  # the average of G's weights, if kept
    optimizer_info: dict[str, np.ndarray] | None = None  # InfoGAN's optimizer, if trained

    @property
    def sampling_generator(self) -> dict[str, np.ndarray]:
        """The weights to draw images with: the average when the run kept one."""
        return self.generator if self.generator_ema is None else self.generator_ema


def staging_folder(folder: Path) -> Path:
    """Where the next checkpoint is written before it replaces ``folder``."""
    return folder.with_name(folder.name + ".partial")


def previous_folder(folder: Path) -> Path:
    """Where the replaced checkpoint waits until the new one is in place."""
    return folder.with_name(folder.name + ".previous")


def save_checkpoint(folder: str | Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a half-written checkpoint never replaces a good one.

    The new checkpoint is written to a staging folder, state.json last (itself by a rename), so
    a staging folder holding state.json is complete. The old checkpoint then moves to
    ``.previous``, the staging folder takes its place, and ``.previous`` is removed. A crash at
    any point leaves a complete checkpoint that ``find_checkpoint`` finds, and the next save
    first finishes what the crashed one left.
    """
    folder = Path(folder)
    staging, previous = staging_folder(folder), previous_folder(folder)
    _finish_interrupted_save(folder, staging, previous)
    staging.mkdir(parents=True)
    for name in _ARRAY_FILES + _OPTIONAL_ARRAY_FILES:
        if getattr(checkpoint, name) is None:
            continue
        # np.require, not np.ascontiguousarray: that turns a 0-d array (the optimizer's step)
        # into shape (1,)
        arrays = {
            key: np.require(value, requirements="C")
            for key, value in getattr(checkpoint, name).items()
        }
        save_file(arrays, str(staging / f"{name}.safetensors"))
    document = {"format": FORMAT, "model": checkpoint.model.to_dict(), **checkpoint.state}
    unfinished = staging / "state.json.partial"
    unfinished.write_text(json.dumps(document, indent=1))
    os.replace(unfinished, staging / "state.json")
    _move_into_place(staging, folder, previous)


def _move_into_place(staging: Path, folder: Path, previous: Path) -> None:
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    os.replace(staging, folder)
    shutil.rmtree(previous, ignore_errors=True)


def _finish_interrupted_save(folder: Path, staging: Path, previous: Path) -> None:
    """Leave only ``folder``, holding the newest complete checkpoint a crashed save left."""
    if (staging / "state.json").is_file():
        _move_into_place(staging, folder, previous)
    shutil.rmtree(staging, ignore_errors=True)
    if folder.exists():  # else .previous may be the only checkpoint there is
        shutil.rmtree(previous, ignore_errors=True)


def find_checkpoint(path: str | Path) -> Path:
    """Accept a run folder or the checkpoint folder inside it.

    After a crash inside ``save_checkpoint`` the newest complete checkpoint may still be in the
    staging folder, or only the replaced one in ``.previous``; both are found, newest first.
    """
    path = Path(path)
    for folder in (path / "checkpoint", path):
        for candidate in (staging_folder(folder), folder, previous_folder(folder)):
            if (candidate / "state.json").is_file():
                return candidate
    if not path.exists():
        raise GxError(f"checkpoint '{path}' does not exist; pass a run folder made by 'gx run'")
    raise GxError(
        f"'{path}' holds no gx checkpoint (no checkpoint/state.json); pass a run "
        "folder made by 'gx run'"
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    folder = find_checkpoint(path)
    try:
        document = json.loads((folder / "state.json").read_text())
        if not isinstance(document, dict):
            raise ValueError("state.json is not a JSON object")
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        model = model_from_dict(document.pop("model"))
        arrays = {name: load_file(str(folder / f"{name}.safetensors")) for name in _ARRAY_FILES}
        optional = {
            name: load_file(str(folder / f"{name}.safetensors"))
            for name in _OPTIONAL_ARRAY_FILES
            if (folder / f"{name}.safetensors").is_file()
        }
    # A truncated weights file raises SafetensorError; a state.json with missing or mistyped
    # entries raises KeyError or TypeError. All mean the same to the user: a damaged checkpoint.
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
        raise GxError(
            f"checkpoint '{folder}' cannot be read ({error}); it is damaged or not a gx checkpoint"
        ) from None
    document.pop("format")
    return Checkpoint(
        model,
        arrays["generator"],
        arrays["discriminator"],
        arrays["optimizer_g"],
        arrays["optimizer_d"],
        document,
        optional.get("generator_ema"),
        optional.get("optimizer_info"),
    )
