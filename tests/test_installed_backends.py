"""Backend defaults follow what is installed: a Jittor-only (or torch-only) machine needs no flags.

Commands that read a checkpoint use the backend that trained it when installed, else the
installed one; ``gx run`` and ``gx bench`` use torch when installed, else jittor. The end-to-end
tests run ``gx`` in fresh interpreters in which one framework cannot be imported.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tiny import gx_subprocess, write_tiny_experiment

import gx.backends as backends
from gx.backends import checkpoint_backend, default_backend
from gx.tools.generate import sample

TRAINED_BY = {
    "torch": {"backend": {"backend": "torch"}},
    "jittor": {"backend": {"backend": "jittor"}},
    "unknown": {},
}


@pytest.mark.parametrize(
    "installed, default, by_torch, by_jittor, by_unknown",
    [
        (("torch", "jittor"), "torch", "torch", "jittor", "torch"),
        (("jittor",), "jittor", "jittor", "jittor", "jittor"),
        (("torch",), "torch", "torch", "torch", "torch"),
        ((), "torch", "torch", "torch", "torch"),  # then the error says how to install torch
    ],
)
def test_defaults_follow_the_installed_frameworks(
    monkeypatch, installed, default, by_torch, by_jittor, by_unknown
):
    monkeypatch.setattr(backends, "available", lambda name: name in installed)
    assert default_backend() == default
    assert checkpoint_backend(TRAINED_BY["torch"]) == by_torch
    assert checkpoint_backend(TRAINED_BY["jittor"]) == by_jittor
    assert checkpoint_backend(TRAINED_BY["unknown"]) == by_unknown


def gx_without(missing: str, scratch, *arguments) -> str:
    result = gx_subprocess(arguments, scratch, [missing])
    assert result.returncode == 0, f"gx {' '.join(map(str, arguments))}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.jittor
@pytest.mark.parametrize("missing, installed", [("torch", "jittor"), ("jittor", "torch")])
@pytest.mark.slow
def test_run_generate_strip_eval_with_one_framework(
    tmp_path, data_root, classifier28, missing, installed
):
    experiment, run = write_tiny_experiment(tmp_path), tmp_path / "run"
    gx_without(missing, tmp_path, "run", experiment, "--data-root", data_root, "--out", run)
    assert json.loads((run / "run.json").read_text())["backend"]["backend"] == installed
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    gx_without(
        missing,
        tmp_path,
        "generate",
        "--checkpoint",
        run,
        "--labels",
        "3,1,4",
        "--out",
        tmp_path / "g.npy",
    )
    images = np.load(tmp_path / "g.npy")
    # the same numbers this process draws with that backend, both installed here: the same
    # kernels on the same CPU in another process, so at most a thread schedule's rounding
    np.testing.assert_allclose(images, sample(run, [3, 1, 4], backend_name=installed), atol=1e-6)

    gx_without(
        missing,
        tmp_path,
        "strip",
        "13800138000",
        "--checkpoint",
        run,
        "--best-of",
        "2",
        "--data-root",
        data_root,
        "--out",
        tmp_path / "strip.png",
    )
    with Image.open(tmp_path / "strip.png") as strip:
        assert strip.size == (11 * 28, 28)

    gx_without(missing, tmp_path, "eval", run, "--n", "50", "--data-root", data_root)
    scores = json.loads((run / "eval.json").read_text())
    assert scores["backend"]["backend"] == installed and scores["n"] == 50
    assert 0 <= scores["agreement"] <= 1 and scores["frechet_distance"] > 0

    bench = json.loads(
        gx_without(missing, tmp_path, "bench", experiment, "--steps", "1", "--warmup", "0")
        .strip()
        .splitlines()[-1]
    )
    assert bench["backend"] == installed


@pytest.mark.jittor
@pytest.mark.slow
def test_sampling_prefers_the_backend_that_trained_the_checkpoint(
    tmp_path, data_root, classifier28
):
    experiment, run = write_tiny_experiment(tmp_path), tmp_path / "run"
    gx_without("torch", tmp_path, "run", experiment, "--data-root", data_root, "--out", run)
    # both installed now: eval (without --backend) samples with Jittor, which trained it
    result = gx_subprocess(["eval", run, "--n", "20", "--data-root", data_root], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "eval.json").read_text())["backend"]["backend"] == "jittor"
