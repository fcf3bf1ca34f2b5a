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
                               a loss's own state where it keeps one (BEGAN's k: loss_state),
                               and the SHA-256 of every file above ('files')

Loading reads arrays and JSON only; nothing in a checkpoint is ever executed. Any backend can
load what any backend wrote. safetensors has no checksum of its own, so a file changed after gx
wrote it (a bad disk, a bad copy) is recognised by its SHA-256 and refused, as are weights that
are not finite, which gx never saves (``GX_ALLOW_NONFINITE=1`` loads them anyway). Checkpoints
written before gx recorded checksums load without that check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save_file

from gx.errors import GxError
from gx.models import GanModel, model_from_dict
from gx.outputs import WRITE_ERRORS, cannot_write, reason

FORMAT = "gx-checkpoint-1"
FOLDER = "checkpoint"  # a run folder's checkpoint folder
STATE = "state.json"
_ARRAY_FILES = ("generator", "discriminator", "optimizer_g", "optimizer_d")
_OPTIONAL_ARRAY_FILES = ("generator_ema", "optimizer_info")
# Set to 1 to load weights that are not finite (NaN, inf), for a user who wants to look at them.
ALLOW_NONFINITE_VARIABLE = "GX_ALLOW_NONFINITE"


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
    # Loaded with GX_ALLOW_NONFINITE=1: where its first non-finite value is ("" when finite).
    non_finite: str = ""

    @property
    def sampling_generator(self) -> dict[str, np.ndarray]:
        """The weights to draw images with: the average when the run kept one."""
        return self.generator if self.generator_ema is None else self.generator_ema


class CheckpointNotSaved(GxError):
    """A checkpoint could not be written (a full disk, a read-only folder); the previous
    checkpoint in the folder, if any, is left as it was."""

    def __init__(self, folder: Path, error: BaseException) -> None:
        self.folder, self.reason = folder, reason(error)
        super().__init__(str(cannot_write(folder, error, "checkpoint")))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def non_finite_allowed() -> bool:
    return os.environ.get(ALLOW_NONFINITE_VARIABLE, "") not in ("", "0")


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
    first finishes what the crashed one left. A write that fails (a full disk) removes the
    staging folder and raises ``CheckpointNotSaved``; the old checkpoint stays.
    """
    folder = Path(folder)
    staging, previous = staging_folder(folder), previous_folder(folder)
    _finish_interrupted_save(folder, staging, previous)
    try:
        _write_staging(staging, checkpoint)
    except WRITE_ERRORS as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise CheckpointNotSaved(folder, error) from None
    _move_into_place(staging, folder, previous)


def _write_staging(staging: Path, checkpoint: Checkpoint) -> None:
    staging.mkdir(parents=True)
    files = {}
    for name in _ARRAY_FILES + _OPTIONAL_ARRAY_FILES:
        if getattr(checkpoint, name) is None:
            continue
        # np.require, not np.ascontiguousarray: that turns a 0-d array (the optimizer's step)
        # into shape (1,)
        arrays = {
            key: np.require(value, requirements="C")
            for key, value in getattr(checkpoint, name).items()
        }
        path = staging / f"{name}.safetensors"
        save_file(arrays, str(path))
        files[path.name] = sha256(path)
    document = {
        "format": FORMAT,
        "model": checkpoint.model.to_dict(),
        **checkpoint.state,
        "files": files,
    }
    unfinished = staging / f"{STATE}.partial"
    unfinished.write_text(json.dumps(document, indent=1))
    os.replace(unfinished, staging / STATE)


def _move_into_place(staging: Path, folder: Path, previous: Path) -> None:
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    os.replace(staging, folder)
    shutil.rmtree(previous, ignore_errors=True)


def tidy_checkpoint(folder: str | Path) -> None:
    """Finish or drop what a save stopped midway left beside ``folder`` (see save_checkpoint)."""
    folder = Path(folder)
    _finish_interrupted_save(folder, staging_folder(folder), previous_folder(folder))


def _finish_interrupted_save(folder: Path, staging: Path, previous: Path) -> None:
    """Leave only ``folder``, holding the newest complete checkpoint a crashed save left."""
    if (staging / STATE).is_file():
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
    for folder in (path / FOLDER, path):
        for candidate in (staging_folder(folder), folder, previous_folder(folder)):
            if (candidate / STATE).is_file():
                return candidate
    if not path.exists():
        raise GxError(f"checkpoint '{path}' does not exist; pass a run folder made by 'gx run'")
    raise GxError(
        f"'{path}' holds no gx checkpoint (no checkpoint/state.json); pass a run "
        "folder made by 'gx run'"
    )


def saved_step(path: str | Path) -> int:
    """The step of the checkpoint ``find_checkpoint`` finds, read from its state.json alone."""
    folder = find_checkpoint(path)
    try:
        return int(json.loads((folder / STATE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GxError(
            f"checkpoint '{folder}' cannot be read ({error}); it is damaged or not a gx "
            "checkpoint: use an intact copy of the run folder"
        ) from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint of a run folder (or a checkpoint folder), checked to be what gx wrote:
    every file's SHA-256 where state.json records them, and finite weights."""
    folder = find_checkpoint(path)
    try:
        document = json.loads((folder / STATE).read_text())
        if not isinstance(document, dict):
            raise ValueError("state.json is not a JSON object")
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
        model = model_from_dict(document.pop("model"))
        recorded = document.pop("files", None)
        names = list(_ARRAY_FILES) + [
            name for name in _OPTIONAL_ARRAY_FILES if (folder / f"{name}.safetensors").is_file()
        ]
        arrays = {name: _read_arrays(folder / f"{name}.safetensors", recorded) for name in names}
    # A truncated weights file raises SafetensorError; a state.json with missing or mistyped
    # entries raises KeyError or TypeError. All mean the same to the user: a damaged checkpoint.
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
        raise GxError(
            f"checkpoint '{folder}' cannot be read ({error}); it is damaged or not a gx "
            "checkpoint: use an intact copy of the run folder"
        ) from None
    document.pop("format")
    non_finite = _first_non_finite(arrays)
    if non_finite and not non_finite_allowed():
        raise GxError(
            f"checkpoint '{folder}' holds weights that are not finite ({non_finite}), which gx "
            "never saves, so it is damaged: use an intact copy of the run folder, or set "
            f"{ALLOW_NONFINITE_VARIABLE}=1 to load it as it is"
        )
    return Checkpoint(
        model,
        arrays["generator"],
        arrays["discriminator"],
        arrays["optimizer_g"],
        arrays["optimizer_d"],
        document,
        arrays.get("generator_ema"),
        arrays.get("optimizer_info"),
        non_finite,
    )


def _read_arrays(path: Path, recorded: Any) -> dict[str, np.ndarray]:
    """A safetensors file's arrays; with ``recorded`` (state.json's 'files'), only when its
    SHA-256 is the one recorded."""
    data = path.read_bytes()
    if recorded is not None:
        if not isinstance(recorded, dict) or path.name not in recorded:
            raise ValueError(f"state.json records no checksum of {path.name}")
        if hashlib.sha256(data).hexdigest() != recorded[path.name]:
            raise ValueError(
                f"{path.name} is not the file gx wrote: its SHA-256 differs from the one "
                "recorded in state.json"
            )
    return load(data)


def _first_non_finite(arrays: dict[str, dict[str, np.ndarray]]) -> str:
    """'generator.safetensors: 12 of fc.weight's values' for the first array holding NaN or
    inf; "" when every value is finite."""
    for name, tensors in arrays.items():
        for key, array in sorted(tensors.items()):
            bad = array.size - int(np.isfinite(array).sum())
            if bad:
                return f"{name}.safetensors: {bad} of {key}'s {array.size} values"
    return ""
