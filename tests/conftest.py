"""Shared pytest fixtures."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gx.backends import get_backend
from gx.checkpoint import Checkpoint, save_checkpoint
from gx.cli import main
from gx.config import load_experiment
from gx.evaluate.classifier import Classifier, labelled_split, load_classifier
from gx.models import build_model
from gx.spec import initial_state
from gx.train.run import RunOptions, run_experiment

REPO_ROOT = Path(__file__).resolve().parents[1]
# PyTorch's kernel level in the child that gx.parity.isa.lower_isa_environment starts, per
# parent level
LOWER_LEVEL = {"AVX512": "AVX2", "AVX2": "DEFAULT"}
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Folder with the real MNIST test split: $GX_TEST_MNIST, else ../shared/data/mnist.

    A missing folder fails the tests that need it: they are part of what CI must prove.
    """
    root = Path(os.environ.get("GX_TEST_MNIST") or REPO_ROOT.parent / "shared" / "data" / "mnist")
    missing = [name for name in MNIST_TEST_FILES if not (root / name).is_file()]
    if missing:
        pytest.fail(f"MNIST test split not found in {root} (missing {', '.join(missing)}); "
                    "set GX_TEST_MNIST to the folder holding it")
    return root



# -- runs and the evaluation classifier, made once per session (strip, eval, generate) --------------------------------------------


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return tmp_path_factory.getbasetemp() / "gx-evaluation" / name


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """A writable copy of the MNIST test split, so cached classifiers land in the test folder."""
    folder = shared_folder(tmp_path_factory, "mnist")
    if not folder.exists():
        folder.mkdir(parents=True)
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            shutil.copy(mnist_root / name, folder / name)
    return folder


def two_step_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path,
                 experiment: str) -> Path:
    folder = shared_folder(tmp_path_factory, f"run-{experiment}")
    if not (folder / "checkpoint" / "state.json").is_file():
        loaded = load_experiment(REPO_ROOT / "experiments" / f"{experiment}.yaml",
                                 ["data.split=test", "train.max_steps=2", "train.batch_size=16"])
        run_experiment(loaded, RunOptions(backend="torch", device="cpu", data_root=str(data_root),
                                          out=str(folder), progress=False))
    return folder


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    return two_step_run(tmp_path_factory, data_root, "cgan")


@pytest.fixture(scope="session")
def cdcgan_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    return two_step_run(tmp_path_factory, data_root, "cdcgan")


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    return two_step_run(tmp_path_factory, data_root, "gan")


@pytest.fixture(scope="session")
def classifier28(data_root: Path) -> Classifier:
    """The real evaluation classifier (default recipe), trained once and then read from cache."""
    return load_classifier(get_backend("torch", "cpu"), "mnist", data_root, 28)


def lookup_run(folder: Path, digits: np.ndarray) -> Path:
    """A checkpoint whose generator ignores z and draws ``digits[label]`` (C, 1, 28, 28).

    G(z, label) = tanh(E[label]) reshaped, with E = atanh of the digit images: a perfectly
    conditional, perfectly collapsed generator.
    """
    classes, _, height, width = digits.shape
    generator = {"inputs": {"z": [8], "label": {"classes": classes}},
                 "layers": [{"name": "table", "kind": "embedding", "input": "label",
                             "dim": height * width},
                            {"name": "squash", "kind": "tanh"},
                            {"name": "image", "kind": "reshape", "shape": [1, height, width]}]}
    discriminator = {"inputs": {"image": [1, height, width], "label": {"classes": classes}},
                     "layers": [{"name": "flat", "kind": "flatten", "input": "image"},
                                {"name": "score", "kind": "linear", "out": 1}]}
    model = build_model("custom", generator=generator, discriminator=discriminator)
    table = np.arctanh(np.clip(digits.reshape(classes, -1), -0.999, 0.999)).astype(np.float32)
    save_checkpoint(folder / "checkpoint", Checkpoint(
        model, {"table.weight": table}, initial_state(model.discriminator, 0), {}, {},
        {"step": 0, "experiment": "lookup"}))
    return folder


def clearest_digits(classifier: Classifier, data_root: Path) -> np.ndarray:
    """For each class, the held-out image the classifier reads most confidently as that class."""
    split = labelled_split("mnist", data_root, 28)
    probabilities = classifier.read(split.held_out_images).probabilities
    picks = [np.flatnonzero(split.held_out_labels == c)[
        probabilities[split.held_out_labels == c, c].argmax()] for c in range(10)]
    return split.held_out_images[picks]


def gx(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(argument) for argument in arguments])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def png(path: Path) -> tuple[Image.Image, np.ndarray]:
    image = Image.open(io.BytesIO(path.read_bytes()))
    return image, np.asarray(image)


