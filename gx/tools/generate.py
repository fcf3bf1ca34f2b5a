"""``gx generate``: sample a trained generator, on any backend, from any backend's checkpoint.

``load_generator`` and ``generate`` (gx.run_folder.sampler) are the generator every sampling
command uses; they are named here too, as the library behind ``gx generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gx import images
from gx.checkpoint import find_checkpoint, load_checkpoint
from gx.errors import GxError
from gx.models import GanModel
from gx.outputs import written_atomically
from gx.run_folder.sampler import compile_generator, generate, load_generator

__all__ = [
    "check_labels",
    "generate",
    "load_generator",
    "parse_labels",
    "read_noise",
    "sample",
    "sample_to_file",
]


def check_labels(labels: np.ndarray, classes: int) -> np.ndarray:
    """gx takes class labels as integers only (Jittor would silently truncate floats)."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise GxError(f"labels must be integers, got {labels.dtype}; pass e.g. np.int64 values")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise GxError(f"labels must be in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def parse_labels(text: str, classes: int) -> np.ndarray:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GxError(
            f"--labels must be comma-separated integers like 3,1,4; got '{text}'"
        ) from None
    if not values:
        raise GxError("--labels is empty; give at least one class, e.g. --labels 3,1,4")
    return check_labels(np.array(values, dtype=np.int64), classes)


def read_noise(path: str | Path, model: GanModel) -> np.ndarray:
    """A .npy of shape (N, *noise_shape), or (N, noise_size) reshaped to it."""
    try:
        noise = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GxError(f"cannot read --noise '{path}' ({error}); save it with numpy.save") from None
    size = int(np.prod(model.noise_shape))
    if noise.ndim < 2 or int(np.prod(noise.shape[1:])) != size:
        raise GxError(
            f"--noise '{path}' has shape {noise.shape}; this generator needs "
            f"(N, {', '.join(map(str, model.noise_shape))})"
        )
    return noise.reshape(len(noise), *model.noise_shape).astype(np.float32)


def _labels_for(
    model: GanModel, labels: str | Sequence[int] | None, count: int | None
) -> np.ndarray | None:
    """The class of each image: as given ("3,1,4" or a sequence), else 0, 1, 2, ... repeated."""
    if not model.conditional:
        if labels is not None:
            raise GxError(
                f"model '{model.name}' is unconditional and takes no labels; drop "
                "--labels (use --count for the number of images)"
            )
        return None
    if isinstance(labels, str):
        return parse_labels(labels, model.classes)
    if labels is not None:
        return check_labels(np.asarray(labels), model.classes)
    return np.arange(count or model.classes, dtype=np.int64) % model.classes


def _noise_for(
    model: GanModel, noise: str | Path | np.ndarray | None, wanted: int, seed: int
) -> np.ndarray:
    """Noise from a .npy file or an array, else drawn from numpy.random.default_rng(seed)."""
    if noise is None:
        return np.random.default_rng(seed).standard_normal(
            (wanted, *model.noise_shape), dtype=np.float32
        )
    if isinstance(noise, (str, Path)):
        noise = read_noise(noise, model)
    noise = np.asarray(noise, np.float32)
    if noise.shape != (wanted, *model.noise_shape):
        raise GxError(
            f"--noise has shape {noise.shape}, but {wanted} images were asked for: "
            f"give noise shaped {(wanted, *model.noise_shape)}"
        )
    return noise


def sample(
    checkpoint: str | Path,
    labels: str | Sequence[int] | None = None,
    count: int | None = None,
    noise: str | Path | np.ndarray | None = None,
    seed: int = 0,
    backend_name: str | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] from a run's generator, as ``gx generate`` draws them.

    ``labels``: classes to draw (conditional models; default 0..classes-1, or ``count`` of
    them); ``count``: images of an unconditional model (default 16); ``noise``: a .npy path or
    an array (N, *noise_shape), else seeded noise.
    """
    loaded = load_checkpoint(checkpoint)
    model = loaded.model
    # Every argument is checked before the framework loads: it can take a while.
    label_array = _labels_for(model, labels, count)
    wanted = len(label_array) if label_array is not None else (count or 16)
    drawn = _noise_for(model, noise, wanted, seed)
    source = f"checkpoint '{find_checkpoint(checkpoint)}'"
    backend, generator, _ = compile_generator(loaded, source, backend_name, device)
    return generate(backend, generator, drawn, label_array)


def sample_to_file(
    checkpoint: str,
    backend_name: str | None,
    device: str,
    out: str,
    labels_text: str | None,
    count: int | None,
    noise_path: str | None,
    seed: int,
) -> np.ndarray:
    """``gx generate``: the images of ``sample`` written to ``out``, a PNG grid or a .npy of
    floats, all at once (gx.outputs): a file only ever complete under its name."""
    if not out.endswith((".png", ".npy")):
        raise GxError(f"--out must end in .png or .npy, got '{out}'")
    with written_atomically(out) as staging:
        result = sample(checkpoint, labels_text, count, noise_path, seed, backend_name, device)
        if out.endswith(".npy"):
            with staging.open("wb") as stream:
                np.save(stream, result)
        else:
            columns = min(len(result), 10)
            grid = images.image_grid(result, -(-len(result) // columns), columns)
            grid.save(staging, format="PNG")
    return result
