"""Training the evaluation classifier (softmax cross-entropy, Adam, small random shifts), and
``load_classifier``: the cached one when its key matches, else a freshly trained one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from gx.backends.base import Backend, Module
from gx.config import OptimizerSettings
from gx.data import class_names
from gx.errors import GxError
from gx.evaluate.classifier import FORMAT, Classifier, ClassifierRecipe, classifier_spec
from gx.evaluate.classifier_cache import (
    cache_dirs,
    cache_key,
    cache_name,
    find_cached,
    save_classifier,
    user_cache_dir,
    writable_folder,
)
from gx.evaluate.real_images import labelled_split, source_files
from gx.spec import ModelSpec


def random_shifts(images: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by up to ``limit`` pixels in x and y, the border filled with background.

    Digits in generated images are rarely centred exactly as MNIST's are; shifted training
    images make the classifier read them by shape rather than position. Done in numpy, so both
    backends train on the same pixels.
    """
    if limit == 0:
        return images
    count, _, size, _ = images.shape
    # -1 is the background of images scaled to [-1, 1]
    padded = np.pad(images, ((0, 0), (0, 0), (limit, limit), (limit, limit)), constant_values=-1.0)
    offsets = rng.integers(0, 2 * limit + 1, (2, count))
    rows = offsets[0][:, None] + np.arange(size)
    cols = offsets[1][:, None] + np.arange(size)
    # The index arrays broadcast to (N, H, W) and the channel slice comes last: (N, H, W, C).
    moved = padded[np.arange(count)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return moved.transpose(0, 3, 1, 2)


def fit(
    backend: Backend,
    spec: ModelSpec,
    images: np.ndarray,
    labels: np.ndarray,
    recipe: ClassifierRecipe,
) -> Module:
    """Train the classifier with softmax cross-entropy and Adam; returns the native module."""
    module = backend.compile(spec, [recipe.seed, 1])
    parameters = backend.state_tensors(module, spec, trainable_only=True)
    optimizer = backend.optimizer(
        parameters, OptimizerSettings(kind="adam", lr=recipe.lr, betas=(0.9, 0.999))
    )
    batch = min(recipe.batch_size, len(images))
    for epoch in range(recipe.epochs):
        if epoch == recipe.epochs - 1 and epoch > 0:
            backend.set_learning_rate(optimizer, recipe.lr * recipe.last_epoch_lr_factor)
        rng = np.random.default_rng([recipe.seed, 2, epoch])
        order = rng.permutation(len(images))
        for start in range(0, len(images) - batch + 1, batch):
            indices = order[start : start + batch]
            shifted = random_shifts(images[indices], recipe.shift, rng)
            logits = module({"image": backend.tensor(shifted)})
            loss = backend.cross_entropy(logits, backend.tensor(labels[indices]))
            backend.minimize(optimizer, loss)
    backend.set_training(module, False)
    return module


def accuracy(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float((classifier.read(images).predictions == labels).mean())


def _spec_for(dataset: str, root: Path, image_size: int, channels: int) -> ModelSpec:
    return classifier_spec(image_size, len(class_names(dataset, root)), channels)


def train_classifier(
    backend: Backend,
    dataset: str,
    root: str | Path,
    image_size: int,
    recipe: ClassifierRecipe = ClassifierRecipe(),
    channels: int = 1,
) -> Classifier:
    """Train a classifier now (ignoring any cached one), cache it, and return it.

    It reads ``channels``-channel images of ``image_size`` pixels square and tells the dataset's
    classes apart. ``classifier.info`` holds the held-out accuracy, the split used and where it
    was saved.
    """
    root = Path(root).expanduser()
    split = labelled_split(dataset, root, image_size, channels)  # first: it checks the data
    spec = _spec_for(dataset, root, image_size, channels)
    key = cache_key(dataset, image_size, split.files, spec, recipe)
    images, labels = split.train_images, split.train_labels
    if recipe.train_images is not None:
        images, labels = images[: recipe.train_images], labels[: recipe.train_images]
    began = time.perf_counter()
    module = fit(backend, spec, images, labels, recipe)
    seconds = time.perf_counter() - began
    weights = backend.get_weights(module, spec)
    info: dict[str, Any] = {
        "format": FORMAT,
        "key": key,
        "dataset": dataset,
        "image_size": image_size,
        "files": _describe_files(split.files, root),
        "split": split.description,
        "train_images": len(images),
        "held_out_images": len(split.held_out_images),
        "recipe": recipe.to_dict(),
        "backend": backend.describe(),
        "train_seconds": round(seconds, 2),
    }
    classifier = Classifier(backend, spec, weights, info)
    info["held_out_accuracy"] = accuracy(classifier, split.held_out_images, split.held_out_labels)
    folder = next((folder for folder in cache_dirs(root, dataset) if writable_folder(folder)), None)
    if folder is None:
        raise GxError(
            f"cannot cache the classifier: neither {root} nor {user_cache_dir()} is "
            "writable; make one of them writable"
        )
    info["path"] = str(save_classifier(folder, cache_name(dataset, image_size, key), weights, info))
    return classifier


def _describe_files(files: list[Path], root: Path) -> list[str] | str:
    """The data files by name; an image folder's thousands of files by their count."""
    if len(files) <= 10:
        return [path.name for path in files]
    return f"{len(files)} files in {root}"


def load_classifier(
    backend: Backend,
    dataset: str,
    root: str | Path,
    image_size: int,
    recipe: ClassifierRecipe = ClassifierRecipe(),
    train_if_missing: bool = True,
    channels: int = 1,
) -> Classifier:
    """The cached classifier for this dataset, size, channels, data files, spec and recipe;
    trained (and cached) on first use."""
    root = Path(root).expanduser()
    files = source_files(dataset, root)[1]  # first: it checks the data
    spec = _spec_for(dataset, root, image_size, channels)
    key = cache_key(dataset, image_size, files, spec, recipe)
    document = find_cached(dataset, image_size, key, root)
    if document is None:
        if not train_if_missing:
            raise GxError(
                f"no cached {dataset} classifier for {image_size}px images; train one "
                f"with 'gx classifier train --image-size {image_size}'"
            )
        return train_classifier(backend, dataset, root, image_size, recipe, channels)
    info = json.loads(document.read_text())
    try:
        weights = load_file(str(document.with_suffix(".safetensors")))
    except (OSError, ValueError, SafetensorError):  # a damaged entry is trained again
        return train_classifier(backend, dataset, root, image_size, recipe, channels)
    info["path"] = str(document)
    return Classifier(backend, spec, weights, info)
