"""``gx generate``: sample a trained generator, on any backend, from any backend's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gx import images
from gx.backends import compile_spec, get_backend, load_weights
from gx.backends.base import Backend, check_labels
from gx.checkpoint import find_checkpoint, load_checkpoint
from gx.errors import GxError
from gx.models import GanModel


def load_generator(checkpoint_path: str | Path, backend_name: str,
                   device: str = "auto") -> tuple[Backend, Any, GanModel]:
    """The checkpoint's generator compiled in ``backend_name``, in eval mode."""
    checkpoint = load_checkpoint(checkpoint_path)
    backend = get_backend(backend_name, device)
    generator = compile_spec(backend, checkpoint.model.generator, 0)
    load_weights(backend, generator, checkpoint.model.generator, checkpoint.generator,
                 f"checkpoint '{find_checkpoint(checkpoint_path)}'")
    backend.set_training(generator, False)
    return backend, generator, checkpoint.model


def generate(backend: Backend, generator: Any, noise: np.ndarray,
             labels: np.ndarray | None, batch: int = 500) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] as float32 numpy, computed in batches without gradients."""
    parts = []
    with backend.no_grad():
        for start in range(0, len(noise), batch):
            inputs = {"z": backend.tensor(noise[start:start + batch])}
            if labels is not None:
                inputs["label"] = backend.tensor(labels[start:start + batch])
            parts.append(backend.numpy(generator(inputs)).astype(np.float32))
    return np.concatenate(parts)


def parse_labels(text: str, classes: int) -> np.ndarray:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GxError(f"--labels must be comma-separated integers like 3,1,4; got '{text}'") from None
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
        raise GxError(f"--noise '{path}' has shape {noise.shape}; this generator needs "
                      f"(N, {', '.join(map(str, model.noise_shape))})")
    return noise.reshape(len(noise), *model.noise_shape).astype(np.float32)


def sample_to_file(checkpoint: str, backend_name: str, device: str, out: str,
                   labels_text: str | None, count: int | None, noise_path: str | None,
                   seed: int) -> np.ndarray:
    if not out.endswith((".png", ".npy")):
        raise GxError(f"--out must end in .png or .npy, got '{out}'")
    backend, generator, model = load_generator(checkpoint, backend_name, device)
    labels = None
    if model.conditional:
        labels = parse_labels(labels_text, model.classes) if labels_text else \
            np.arange(count or model.classes, dtype=np.int64) % model.classes
    elif labels_text:
        raise GxError(f"model '{model.name}' is unconditional; drop --labels (use --count)")
    wanted = len(labels) if labels is not None else (count or 16)
    if noise_path:
        noise = read_noise(noise_path, model)
        if len(noise) != wanted:
            raise GxError(f"--noise holds {len(noise)} vectors but {wanted} images were asked for")
    else:
        noise = np.random.default_rng(seed).standard_normal((wanted, *model.noise_shape),
                                                            dtype=np.float32)
    result = generate(backend, generator, noise, labels)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if out.endswith(".npy"):
        np.save(out, result)
    else:
        columns = min(len(result), 10)
        images.save_grid(result, out, -(-len(result) // columns), columns)
    return result
