"""The evaluation classifier: a small CNN, written as a gx spec, that reads generated digits.

It is trained by gx itself (softmax cross-entropy, Adam) on the dataset's labelled images, so it
runs on either backend, and cached as a safetensors file plus a JSON file. Its ``features`` layer
(128 values per image) is the space in which gx measures Fréchet distance and diversity.

Which images it learns from:

- when the dataset's train split is on disk (a full-dataset machine): all of the train split, and
  the test split is the held-out set;
- otherwise (only the 10,000-image test split, as on gx's CI machines): a fixed 8,500 of the test
  split, chosen by a seeded permutation, and the other 1,500 are held out.

The cache key is a hash of the dataset name, the image size, the SHA-256 of every image and label
file used, the classifier spec and the training recipe, so another dataset, size, file or recipe
is never mistaken for a cached classifier. The cache lives next to the data in ``classifiers/``,
or in ``~/.cache/gx/classifiers/`` when the data folder is read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from gx.backends import compile_spec, get_weights, load_weights
from gx.backends.base import Backend, Module, state_tensors
from gx.data import ensure_files, load_dataset, locate_file
from gx.data.registry import dataset_info
from gx.errors import GxError
from gx.spec import ModelSpec

FORMAT = "gx-classifier-1"
CLASSES = 10
FEATURES_LAYER = "features"
HELD_OUT_WHEN_TEST_ONLY = 1500
SPLIT_SEED = 0
# Images per forward pass when reading: bounds memory whatever the number of images.
READ_BATCH = 500


@dataclass(frozen=True)
class ClassifierRecipe:
    """How the classifier is trained; part of the cache key.

    ``train_images`` caps the training images (None: all of them); tests use small slices.
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    last_epoch_lr_factor: float = 0.1  # a lower rate for the last epoch settles the weights
    shift: int = 2  # random translations of up to this many pixels (data augmentation)
    seed: int = 0
    train_images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def classifier_spec(image_size: int, classes: int = CLASSES) -> ModelSpec:
    """conv 32 k3 -> relu -> conv 64 k3 s2 -> relu -> conv 64 k3 s2 -> relu -> flatten
    -> linear 128 ("features") -> relu -> linear ``classes`` ("logits")."""
    return ModelSpec.from_dict(
        {
            "inputs": {"image": [1, image_size, image_size]},
            "layers": [
                {"name": "conv1", "kind": "conv2d", "out": 32, "kernel": 3, "padding": 1},
                {"name": "relu1", "kind": "relu"},
                {
                    "name": "conv2",
                    "kind": "conv2d",
                    "out": 64,
                    "kernel": 3,
                    "stride": 2,
                    "padding": 1,
                },
                {"name": "relu2", "kind": "relu"},
                {
                    "name": "conv3",
                    "kind": "conv2d",
                    "out": 64,
                    "kernel": 3,
                    "stride": 2,
                    "padding": 1,
                },
                {"name": "relu3", "kind": "relu"},
                {"name": "flat", "kind": "flatten"},
                {"name": FEATURES_LAYER, "kind": "linear", "out": 128},
                {"name": "relu4", "kind": "relu"},
                {"name": "logits", "kind": "linear", "out": classes},
            ],
        },
        "evaluation classifier",
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


@dataclass
class Reading:
    """What the classifier makes of a batch of images."""

    logits: np.ndarray  # (N, classes)
    features: np.ndarray  # (N, 128)

    @property
    def probabilities(self) -> np.ndarray:
        return softmax(self.logits.astype(np.float64))

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


class Classifier:
    """A trained classifier compiled in one backend, in eval mode."""

    def __init__(
        self,
        backend: Backend,
        spec: ModelSpec,
        weights: dict[str, np.ndarray],
        info: dict[str, Any],
    ) -> None:
        self.backend, self.spec, self.info = backend, spec, info
        self.module = compile_spec(backend, spec, 0)
        load_weights(backend, self.module, spec, weights, "the cached classifier")
        backend.set_training(self.module, False)

    def read(self, images: np.ndarray) -> Reading:
        """Logits and features of images (N, 1, S, S) in [-1, 1], in batches."""
        expected = self.spec.inputs["image"].shape
        if tuple(images.shape[1:]) != tuple(expected):
            raise GxError(
                f"the evaluation classifier reads images {expected}, got "
                f"{tuple(images.shape[1:])}; train one for this size with "
                f"'gx classifier train --image-size {images.shape[-1]}'"
            )
        logits, features = [], []
        with self.backend.no_grad():
            for start in range(0, len(images), READ_BATCH):
                batch = self.backend.tensor(
                    np.asarray(images[start : start + READ_BATCH], np.float32)
                )
                outputs = self.module({"image": batch}, keep_all=True)
                logits.append(self.backend.numpy(outputs["logits"]))
                features.append(self.backend.numpy(outputs[FEATURES_LAYER]))
        return Reading(np.concatenate(logits), np.concatenate(features))


# -- where the images come from ------------------------------------------------------------------


@dataclass
class LabelledSplit:
    """The classifier's training and held-out images, and the files they came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    held_out_images: np.ndarray
    held_out_labels: np.ndarray
    files: list[Path]
    description: str


def train_split_present(dataset: str, root: Path) -> bool:
    """Whether the dataset's train split is on disk (then it trains the classifier)."""
    part = dataset_info(dataset).parts["train"]
    return all(locate_file(root, file) is not None for file in (part.images, part.labels))


def source_files(dataset: str, root: Path) -> tuple[str, list[Path]]:
    """The split the classifier's images come from ('both' or 'test') and its files.

    Only the test split is ever downloaded here: the train split is used when it is already on
    disk (``gx run`` downloads it on machines that can).
    """
    split = "both" if train_split_present(dataset, root) else "test"
    return split, sorted(ensure_files(dataset, root, split, download=split == "test").values())


def labelled_split(dataset: str, root: str | Path, image_size: int) -> LabelledSplit:
    """Training and held-out images as described in the module docstring."""
    root = Path(root).expanduser()
    split, files = source_files(dataset, root)
    if split == "both":
        train_images, train_labels = load_dataset(dataset, root, "train", image_size, False)
        held_images, held_labels = load_dataset(dataset, root, "test", image_size, False)
        return LabelledSplit(
            train_images,
            train_labels,
            held_images,
            held_labels,
            files,
            "train split for training, test split held out",
        )
    images, labels = load_dataset(dataset, root, "test", image_size, False)
    # The split is fixed (its own seed), whatever the training recipe's seed.
    order = np.random.default_rng([SPLIT_SEED, len(images)]).permutation(len(images))
    train, held = order[:-HELD_OUT_WHEN_TEST_ONLY], order[-HELD_OUT_WHEN_TEST_ONLY:]
    return LabelledSplit(
        images[train],
        labels[train],
        images[held],
        labels[held],
        files,
        f"test split only: {len(train)} images for training, a fixed {len(held)} held out",
    )


# -- cache ---------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(
    dataset: str, image_size: int, files: list[Path], spec: ModelSpec, recipe: ClassifierRecipe
) -> str:
    """SHA-256 over everything that decides the classifier's weights."""
    parts = {
        "format": FORMAT,
        "dataset": dataset,
        "image_size": image_size,
        "files": {path.name: _file_digest(path) for path in files},
        "spec": spec.to_dict(),
        "recipe": recipe.to_dict(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _writable(folder: Path) -> bool:
    """A folder we may write in: existing with write permission bits, or creatable.

    The permission bits are honoured even for root, so a data folder published read-only
    (r-x for everyone) is never written to.
    """
    while not folder.exists():
        folder = folder.parent
    mode = folder.stat().st_mode
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def user_cache_dir() -> Path:
    return Path.home() / ".cache" / "gx" / "classifiers"


def cache_dirs(root: str | Path) -> list[Path]:
    """Where cached classifiers are looked up, in order: next to the data, then the user cache."""
    return [Path(root).expanduser() / "classifiers", user_cache_dir()]


def _cache_name(dataset: str, image_size: int, key: str) -> str:
    return f"{dataset}-{image_size}px-{key[:16]}"


def _find_cached(dataset: str, image_size: int, key: str, root: Path) -> Path | None:
    for folder in cache_dirs(root):
        document = folder / (_cache_name(dataset, image_size, key) + ".json")
        if document.is_file():
            try:
                if json.loads(document.read_text()).get("key") == key:
                    return document
            except (OSError, ValueError):
                continue  # a damaged entry is retrained and overwritten
    return None


def _save(folder: Path, name: str, weights: dict[str, np.ndarray], info: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / f"{name}.safetensors"
    document = folder / f"{name}.json"
    # Weights first and the JSON last: a JSON file only ever names complete weights.
    staging = weights_path.with_suffix(".partial")
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(staging))
    os.replace(staging, weights_path)
    document.write_text(json.dumps(info, indent=1))
    return document


# -- training ------------------------------------------------------------------------------------


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
    return padded[np.arange(count)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]


def fit(
    backend: Backend,
    spec: ModelSpec,
    images: np.ndarray,
    labels: np.ndarray,
    recipe: ClassifierRecipe,
) -> Module:
    """Train the classifier with softmax cross-entropy and Adam; returns the native module."""
    module = compile_spec(backend, spec, [recipe.seed, 1])
    parameters = state_tensors(module, spec, trainable_only=True)
    optimizer = backend.optimizer(parameters, "adam", recipe.lr, (0.9, 0.999), 1e-8, 0.0)
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


def train_classifier(
    backend: Backend,
    dataset: str,
    root: str | Path,
    image_size: int,
    recipe: ClassifierRecipe = ClassifierRecipe(),
) -> Classifier:
    """Train a classifier now (ignoring any cached one), cache it, and return it.

    ``classifier.info`` holds the held-out accuracy, the split used and where it was saved.
    """
    root = Path(root).expanduser()
    spec = classifier_spec(image_size)
    split = labelled_split(dataset, root, image_size)
    key = cache_key(dataset, image_size, split.files, spec, recipe)
    images, labels = split.train_images, split.train_labels
    if recipe.train_images is not None:
        images, labels = images[: recipe.train_images], labels[: recipe.train_images]
    began = time.perf_counter()
    module = fit(backend, spec, images, labels, recipe)
    seconds = time.perf_counter() - began
    weights = get_weights(backend, module, spec)
    info: dict[str, Any] = {
        "format": FORMAT,
        "key": key,
        "dataset": dataset,
        "image_size": image_size,
        "files": [path.name for path in split.files],
        "split": split.description,
        "train_images": len(images),
        "held_out_images": len(split.held_out_images),
        "recipe": recipe.to_dict(),
        "backend": backend.describe(),
        "train_seconds": round(seconds, 2),
    }
    classifier = Classifier(backend, spec, weights, info)
    info["held_out_accuracy"] = accuracy(classifier, split.held_out_images, split.held_out_labels)
    folder = next((folder for folder in cache_dirs(root) if _writable(folder)), None)
    if folder is None:
        raise GxError(
            f"cannot cache the classifier: neither {root} nor {user_cache_dir()} is "
            "writable; make one of them writable"
        )
    info["path"] = str(_save(folder, _cache_name(dataset, image_size, key), weights, info))
    return classifier


def load_classifier(
    backend: Backend,
    dataset: str,
    root: str | Path,
    image_size: int,
    recipe: ClassifierRecipe = ClassifierRecipe(),
    train_if_missing: bool = True,
) -> Classifier:
    """The cached classifier for this dataset, size, data files, spec and recipe; trained (and
    cached) on first use."""
    root = Path(root).expanduser()
    spec = classifier_spec(image_size)
    key = cache_key(dataset, image_size, source_files(dataset, root)[1], spec, recipe)
    document = _find_cached(dataset, image_size, key, root)
    if document is None:
        if not train_if_missing:
            raise GxError(
                f"no cached {dataset} classifier for {image_size}px images; train one "
                f"with 'gx classifier train --image-size {image_size}'"
            )
        return train_classifier(backend, dataset, root, image_size, recipe)
    info = json.loads(document.read_text())
    try:
        weights = load_file(str(document.with_suffix(".safetensors")))
    except (OSError, ValueError):
        return train_classifier(backend, dataset, root, image_size, recipe)
    info["path"] = str(document)
    return Classifier(backend, spec, weights, info)
