"""The tiny experiment end-to-end tests train, and ``gx`` in a fresh interpreter.

``tiny_experiment`` / ``write_tiny_experiment``: a linear GAN (G: tanh of a linear map of the
noise, D: sigmoid of a linear score) on the 28x28 MNIST test split. A step takes milliseconds
on either backend, so runs can cross epochs, crash and resume many times, and be sampled,
stripped and evaluated like cdcgan. Conditional by default (G embeds the label, D sees
it one-hot); unconditional where a test needs the figures of an unconditional model.
``gx_subprocess``: the ``gx`` command in a fresh interpreter where chosen packages are missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from support import REPO_ROOT

from gx.config import Experiment, experiment_from_dict

CLASSES = 10


def tiny_model(conditional: bool) -> dict[str, Any]:
    """The model section of the tiny experiment."""
    generator: dict[str, Any] = {"inputs": {"z": [16]}, "layers": []}
    discriminator: dict[str, Any] = {
        "inputs": {"image": [1, 28, 28]},
        "layers": [{"name": "flat", "kind": "flatten", "input": "image"}],
    }
    if conditional:
        generator["inputs"]["label"] = discriminator["inputs"]["label"] = {"classes": CLASSES}
        generator["layers"] += [
            {"name": "emb", "kind": "embedding", "input": "label", "dim": CLASSES},
            {"name": "joined", "kind": "concat", "input": ["emb", "z"]},
        ]
        discriminator["layers"] += [
            {"name": "onehot", "kind": "one_hot", "input": "label"},
            {"name": "joined", "kind": "concat", "input": ["flat", "onehot"]},
        ]
    generator["layers"] += [
        {"name": "fc", "kind": "linear", "out": 784},
        {"name": "act", "kind": "tanh"},
        {"name": "image", "kind": "reshape", "shape": [1, 28, 28]},
    ]
    discriminator["layers"] += [
        {"name": "score", "kind": "linear", "out": 1},
        {"name": "probability", "kind": "sigmoid"},
    ]
    return {"name": "custom", "generator": generator, "discriminator": discriminator}


def tiny_settings(conditional: bool = True, **sections: dict[str, Any]) -> dict[str, Any]:
    """The tiny experiment as plain data; ``sections`` update its sections (train={...}, ...)."""
    settings: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "model": tiny_model(conditional),
        "data": {"split": "test", "image_size": 28},
        "train": {"batch_size": 8, "max_steps": 2, "sample_every": 1},
    }
    for section, values in sections.items():
        settings[section] = {**settings.get(section, {}), **values}
    return settings


def tiny_experiment(conditional: bool = True, **sections: dict[str, Any]) -> Experiment:
    """The tiny experiment, checked as ``gx run`` checks an experiment file."""
    return experiment_from_dict(tiny_settings(conditional, **sections), "tiny experiment")


def write_tiny_experiment(folder: Path) -> Path:
    """The (conditional) tiny experiment as ``folder/tiny.yaml``, for the ``gx`` command."""
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_settings(), sort_keys=False))
    return path


# Imported first by every interpreter started with this folder on PYTHONPATH: it makes the
# packages named in $GX_TEST_MISSING unimportable, as if they were not installed.
_SITECUSTOMIZE = """\
import os
import sys

for _name in filter(None, os.environ.get("GX_TEST_MISSING", "").split(",")):
    sys.modules[_name] = None  # import fails and importlib.util.find_spec returns None
"""


def gx_subprocess(
    arguments: Sequence[object], scratch: Path, missing: Sequence[str] = (), timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``gx ARGUMENTS`` in a fresh interpreter in which ``missing`` cannot be imported.

    ``scratch``: a folder for the interpreter's start-up hook.
    """
    hook = scratch / "site-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    environment = {
        **os.environ,
        "PYTHONPATH": str(hook),
        "GX_TEST_MISSING": ",".join(missing),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    return subprocess.run(
        [sys.executable, "-c", "from gx.cli import main; main()", *map(str, arguments)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
