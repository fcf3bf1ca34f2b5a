"""The tiny experiment end-to-end tests train, and ``gx`` in a fresh interpreter.

``tiny_experiment`` / ``write_tiny_experiment``: a linear GAN (G: tanh of a linear map of the
noise, D: sigmoid of a linear score) on the 28x28 MNIST test split. A step takes milliseconds
on either backend, so runs can cross epochs, crash and resume many times, and be sampled,
stripped and evaluated like cdcgan. Conditional by default (G embeds the label, D sees
it one-hot); unconditional where a test needs the figures of an unconditional model.
``tiny_critic_model``, ``tiny_autoencoder_model``: the same G with the Ds the losses of
gx.losses need: a small critic (a hidden LeakyReLU layer, raw scores or probabilities, heads for
the class, code and information terms), and an autoencoder.
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


def tiny_critic_model(
    probability: bool = False,
    conditional: bool = False,
    heads: tuple[str, ...] = (),
    fake_class: bool = False,
    code: bool = False,
    batch_norm: bool = False,
) -> dict[str, Any]:
    """The tiny G (with a uniform 'code' input with ``code``) and a critic: a hidden layer of 16
    LeakyReLU units on the flattened image (batch-normalized with ``batch_norm``), then a linear
    score (through a sigmoid with ``probability``) and the ``heads`` on the hidden layer, in
    order: 'class_logits' (10 logits, 11 with ``fake_class``), 'code_estimate' (2 values),
    'embedding' (the hidden layer itself). The critic reads no labels: G's conditional=True
    means G takes them."""
    model = tiny_model(conditional)
    generator = model["generator"]
    if code:
        generator["inputs"]["code"] = {"uniform": [2]}
        joined = next((layer for layer in generator["layers"] if layer["name"] == "joined"), None)
        if joined is None:
            generator["layers"].insert(0, {"name": "joined", "kind": "concat", "input": ["z"]})
            joined = generator["layers"][0]
        joined["input"] = [*joined["input"], "code"]
    layers: list[dict[str, Any]] = [
        {"name": "flat", "kind": "flatten", "input": "image"},
        {"name": "hidden", "kind": "linear", "out": 16},
        *([{"name": "normalized", "kind": "batch_norm"}] if batch_norm else []),
        {"name": "act", "kind": "leaky_relu", "slope": 0.2},
        {"name": "score", "kind": "linear", "out": 1},
    ]
    outputs = ["score"]
    if probability:
        layers.append({"name": "probability", "kind": "sigmoid"})
        outputs = ["probability"]
    widths = {"class_logits": CLASSES + fake_class, "code_estimate": 2}
    for head in heads:
        if head == "embedding":
            outputs.append("act")
        else:
            layers.append({"name": head, "kind": "linear", "input": "act", "out": widths[head]})
            outputs.append(head)
    discriminator = {"inputs": {"image": [1, 28, 28]}, "layers": layers, "output": outputs}
    return {"name": "custom", "generator": generator, "discriminator": discriminator}


def tiny_autoencoder_model(embedding: bool = False) -> dict[str, Any]:
    """The unconditional tiny G and an autoencoder D: a linear code of 16 values, decoded by a
    linear map and a tanh into the image; with ``embedding`` the code is D's second output."""
    model = tiny_model(False)
    layers = [
        {"name": "flat", "kind": "flatten", "input": "image"},
        {"name": "encoded", "kind": "linear", "out": 16},
        {"name": "decoded", "kind": "linear", "out": 784},
        {"name": "squash", "kind": "tanh"},
        {"name": "reconstruction", "kind": "reshape", "shape": [1, 28, 28]},
    ]
    outputs = ["reconstruction", "encoded"] if embedding else ["reconstruction"]
    model["discriminator"] = {"inputs": {"image": [1, 28, 28]}, "layers": layers, "output": outputs}
    return model


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


def tiny_with(model: dict[str, Any], **sections: dict[str, Any]) -> Experiment:
    """The tiny experiment with another model section (``tiny_critic_model`` ...)."""
    settings = tiny_settings(**sections)
    settings["model"] = model
    return experiment_from_dict(settings, "tiny experiment")


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
