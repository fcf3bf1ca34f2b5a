"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from gx.checkpoint import Checkpoint, save_checkpoint
from gx.cli import main
from gx.data import ensure_files
from gx.errors import GxError
from gx.evaluate.classifier import Classifier
from gx.evaluate.real_images import labelled_split
from gx.models import build_model
from gx.spec import initial_state

REPO_ROOT = Path(__file__).resolve().parents[1]
# PyTorch's kernel level in the child that gx.parity.isa.lower_isa_environment starts, per
# parent level
LOWER_LEVEL = {"AVX512": "AVX2", "AVX2": "DEFAULT"}
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def find_mnist_test_split(
    chosen: str | None, beside: Path, cache: Path, mirrors: list[str] | None = None
) -> Path:
    """The first of: the folder ``chosen`` names ($GX_TEST_MNIST), the shared/ folder beside
    the checkout, gx's own data cache (downloaded and md5-checked there by the code gx run
    uses, where the network allows). Raises LookupError naming both ways to provide it."""
    for root in (chosen, beside):
        if root and all((Path(root) / name).is_file() for name in MNIST_TEST_FILES):
            return Path(root)
    try:
        ensure_files("mnist", cache, "test", download=True, mirrors=mirrors)
    except GxError as error:
        raise LookupError(
            "the MNIST test split was not found: set GX_TEST_MNIST to a folder holding "
            f"{' and '.join(MNIST_TEST_FILES)}, or run once with network access so gx "
            f"downloads it to {cache} ({error})"
        ) from None
    return cache


def experiment_file(name: str) -> str:
    """The path of one of the experiments shipped in experiments/."""
    return str(REPO_ROOT / "experiments" / f"{name}.yaml")


def lookup_run(folder: Path, digits: np.ndarray) -> Path:
    """A checkpoint whose generator ignores z and draws ``digits[label]`` (C, 1, 28, 28).

    G(z, label) = tanh(E[label]) reshaped, with E = atanh of the digit images: a perfectly
    conditional, perfectly collapsed generator.
    """
    classes, _, height, width = digits.shape
    generator = {
        "inputs": {"z": [8], "label": {"classes": classes}},
        "layers": [
            {"name": "table", "kind": "embedding", "input": "label", "dim": height * width},
            {"name": "squash", "kind": "tanh"},
            {"name": "image", "kind": "reshape", "shape": [1, height, width]},
        ],
    }
    discriminator = {
        "inputs": {"image": [1, height, width], "label": {"classes": classes}},
        "layers": [
            {"name": "flat", "kind": "flatten", "input": "image"},
            {"name": "score", "kind": "linear", "out": 1},
        ],
    }
    model = build_model("custom", generator=generator, discriminator=discriminator)
    table = np.arctanh(np.clip(digits.reshape(classes, -1), -0.999, 0.999)).astype(np.float32)
    save_checkpoint(
        folder / "checkpoint",
        Checkpoint(
            model,
            {"table.weight": table},
            initial_state(model.discriminator, 0),
            {},
            {},
            {"step": 0, "experiment": "lookup"},
        ),
    )
    return folder


def clearest_digits(classifier: Classifier, data_root: Path) -> np.ndarray:
    """For each class, the held-out image the classifier reads most confidently as that class."""
    split = labelled_split("mnist", data_root, 28)
    probabilities = classifier.read(split.held_out_images).probabilities
    picks = [
        np.flatnonzero(split.held_out_labels == c)[
            probabilities[split.held_out_labels == c, c].argmax()
        ]
        for c in range(10)
    ]
    return split.held_out_images[picks]


def float64_images(run: Path, noise: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """The run's generator in PyTorch float64 on ``noise`` and ``labels``: the reference a float32
    sample's rounding floor is measured against (gx.parity.agreement)."""
    from gx.tools.generate import generate, load_generator

    backend, generator, _ = load_generator(run, "torch", "cpu", "float64")
    return generate(backend, generator, noise, labels)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in float64: for images in [-1, 1], a difference relative to their range."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def gx(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(argument) for argument in arguments])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def png(path: Path) -> tuple[Image.Image, np.ndarray]:
    image = Image.open(io.BytesIO(path.read_bytes()))
    return image, np.asarray(image)


# A colour per digit class for the tinted image folder: the digit's strokes take it, the
# background stays black.
TINTS = np.array(
    [
        [255, 64, 64], [64, 255, 64], [64, 64, 255], [255, 255, 64], [255, 64, 255],
        [64, 255, 255], [255, 160, 32], [160, 32, 255], [32, 160, 96], [200, 200, 200],
    ],
    dtype=np.uint32,
)  # fmt: skip


def tinted(digits: np.ndarray, label: int) -> np.ndarray:
    """uint8 (..., H, W) grayscale digits as (..., H, W, 3) RGB in the class's tint."""
    return ((digits[..., np.newaxis].astype(np.uint32) * TINTS[label] + 127) // 255).astype(
        np.uint8
    )


def write_digit_folder(mnist_root: Path, folder: Path, per_class: int, tint: bool) -> np.ndarray:
    """An image folder of MNIST test digits: ``folder/<digit>/<index>.png``, the first
    ``per_class`` of each class, grayscale PNGs or tinted RGB ones. Returns the test-split
    indices written, in the folder's label order."""
    from gx.data import read_idx

    digits = read_idx(mnist_root / MNIST_TEST_FILES[0])
    labels = read_idx(mnist_root / MNIST_TEST_FILES[1])
    chosen = []
    for label in range(10):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(labels == label)[:per_class]:
            pixels = tinted(digits[index], label) if tint else digits[index]
            Image.fromarray(pixels).save(folder / str(label) / f"{index:05d}.png")
            chosen.append(index)
    return np.asarray(chosen)
