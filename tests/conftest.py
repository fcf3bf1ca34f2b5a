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
