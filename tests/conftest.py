"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def tiny_run(mnist_root, tmp_path_factory):
    """A factory of barely-trained run folders, one per (experiment, backend), made once.

    Two steps at batch 16 on the MNIST test split: enough for a checkpoint of the real model.
    """
    from gx.config import load_experiment
    from gx.train.run import RunOptions, run_experiment

    made: dict[tuple[str, str], Path] = {}

    def make(experiment: str, backend: str = "torch") -> Path:
        key = (experiment, backend)
        if key not in made:
            loaded = load_experiment(f"experiments/{experiment}.yaml",
                                     ["data.split=test", "train.batch_size=16", "train.max_steps=2"])
            folder = tmp_path_factory.mktemp(f"{experiment}-{backend}") / "run"
            run_experiment(loaded, RunOptions(backend=backend, device="cpu",
                                              data_root=str(mnist_root), out=str(folder),
                                              progress=False))
            made[key] = folder
        return made[key]

    return make
