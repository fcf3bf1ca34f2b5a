"""The evaluation classifier: a small CNN, written as a gx spec, that reads generated images
(digits, or the classes of whatever dataset the experiment trains on).

It is trained by gx itself (classifier_training.py), so it runs on either backend. Its
``features`` layer (128 values per image) is the space in which gx measures Fréchet distance
and diversity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from gx.backends.base import Backend
from gx.errors import GxError
from gx.spec import ModelSpec

FORMAT = "gx-classifier-1"
CLASSES = 10
FEATURES_LAYER = "features"
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


def classifier_spec(image_size: int, classes: int = CLASSES, channels: int = 1) -> ModelSpec:
    """conv 32 k3 -> relu -> conv 64 k3 s2 -> relu -> conv 64 k3 s2 -> relu -> flatten
    -> linear 128 ("features") -> relu -> linear ``classes`` ("logits")."""
    return ModelSpec.from_dict(
        {
            "inputs": {"image": [channels, image_size, image_size]},
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
        self.module = backend.compile(spec, 0)
        backend.load_weights(self.module, spec, weights, "the cached classifier")
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
