"""Shared pytest fixtures."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
from support import REPO_ROOT, find_mnist_test_split

from gx.backends import get_backend
from gx.config import load_experiment
from gx.data import resolve_data_root
from gx.evaluate.classifier import Classifier
from gx.evaluate.classifier_training import load_classifier
from gx.train.run import RunOptions, run_experiment


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Folder with the real MNIST test split (support.find_mnist_test_split says where from).

    Without one the tests that need it fail: they are part of what CI must prove.
    """
    try:
        return find_mnist_test_split(
            os.environ.get("GX_TEST_MNIST"),
            REPO_ROOT.parent / "shared" / "data" / "mnist",
            resolve_data_root("mnist", None, None),
        )
    except LookupError as error:
        pytest.fail(str(error))


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


# -- a local mirror for download tests --


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def serve_folder():
    """Serves a folder on 127.0.0.1 and returns the URL of its subfolder ``below``; stopped at
    the end of the test."""
    servers = []

    def start(folder: Path, below: str = "mnist") -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/{below}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
