"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import MNIST_TEST_FILES, REPO_ROOT

from gx.backends import get_backend
from gx.config import load_experiment
from gx.data import ensure_files, resolve_data_root
from gx.errors import GxError
from gx.evaluate.classifier import Classifier
from gx.evaluate.classifier_training import load_classifier
from gx.train.run import RunOptions, run_experiment


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Folder with the real MNIST test split, the first of: $GX_TEST_MNIST, the shared/ folder
    beside the checkout, gx's own data cache (downloaded and md5-checked by the code gx run
    uses, where the network allows).

    Without any of them the tests that need it fail: they are part of what CI must prove.
    """
    for root in (os.environ.get("GX_TEST_MNIST"), REPO_ROOT.parent / "shared" / "data" / "mnist"):
        if root and all((Path(root) / name).is_file() for name in MNIST_TEST_FILES):
            return Path(root)
    cache = resolve_data_root("mnist", None, None)
    try:
        ensure_files("mnist", cache, "test", download=True)
    except GxError as error:
        pytest.fail(
            "the MNIST test split was not found: set GX_TEST_MNIST to a folder holding "
            f"{' and '.join(MNIST_TEST_FILES)}, or run once with network access so gx "
            f"downloads it to {cache} ({error})"
        )
    return cache


# -- runs and the evaluation classifier, made once per session (strip, eval, generate) --


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


def two_step_run(
    tmp_path_factory: pytest.TempPathFactory, data_root: Path, experiment: str
) -> Path:
    folder = shared_folder(tmp_path_factory, f"run-{experiment}")
    if not (folder / "checkpoint" / "state.json").is_file():
        loaded = load_experiment(
            REPO_ROOT / "experiments" / f"{experiment}.yaml",
            ["data.split=test", "train.max_steps=2", "train.batch_size=16"],
        )
        run_experiment(
            loaded,
            RunOptions(
                backend="torch",
                device="cpu",
                data_root=str(data_root),
                out=str(folder),
                progress=False,
            ),
        )
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
