"""Command-line paths no other test runs: the exit statuses of summary and parity when something
is wrong, classifier training, generate's options, eval on Jittor, and parity's stop on a
non-finite loss.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support import REPO_ROOT, gx

import gx.evaluate as evaluate_package
from gx.backends import get_backend
from gx.evaluate.classifier import ClassifierRecipe
from gx.evaluate.classifier_training import load_classifier, train_classifier
from gx.layers.convolution import ConvTranspose2d

TINY_RECIPE = ClassifierRecipe(epochs=1, train_images=256)
SMALL = ["--set", "data.split=test", "--set", "train.batch_size=16"]
HUGE_SGD = [
    argument
    for setting in (
        "optimizer.generator.kind=sgd",
        "optimizer.discriminator.kind=sgd",
        "optimizer.generator.lr=1e30",
        "optimizer.discriminator.lr=1e30",
    )
    for argument in ("--set", setting)
]


def experiment_file(name: str) -> Path:
    return REPO_ROOT / "experiments" / f"{name}.yaml"


# -- gx summary -----------------------------------------------------------------------------------


def test_summary_exits_1_when_a_backend_layer_gives_another_shape(monkeypatch):
    """A backend that drops output_padding (a plausible bug) makes 'same' ConvT 13x13, not 14."""
    arguments = ConvTranspose2d.native_arguments

    def without_output_padding(layer, info, masks):
        built = arguments(layer, info, masks)
        built.pop("output_padding", None)
        return built

    monkeypatch.setattr(ConvTranspose2d, "native_arguments", without_output_padding)
    code, output = gx(
        "summary", experiment_file("dcgan_dense"), "--backend", "torch", "--device", "cpu"
    )
    assert code == 1
    assert "MISMATCH 64x13x13" in output and "MISMATCH 1x25x25" in output
    assert "layer(s) differ from the spec" in output


# -- gx classifier train ------------------------------------------------------------------------


@pytest.mark.slow
def test_classifier_train_reports_and_caches(data_root, tmp_path, monkeypatch):
    # The command as users run it, with a recipe small enough to leave it near chance: the full
    # one is trained, and its accuracy pinned, through the classifier28 fixture.
    monkeypatch.setattr(
        evaluate_package,
        "train_classifier",
        functools.partial(train_classifier, recipe=TINY_RECIPE),
    )
    root = tmp_path / "mnist"
    shutil.copytree(data_root, root, ignore=shutil.ignore_patterns("classifiers"))
    code, output = gx(
        "classifier", "train", "--backend", "torch", "--device", "cpu", "--data-root", root
    )
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("data: ") and "test split" in lines[0]
    assert lines[1].startswith("trained on 256 images in ")
    accuracy = float(lines[2].split(": ")[1].split("%")[0])
    assert 0 <= accuracy <= 100 and "(1500 images)" in lines[2]
    saved = Path(lines[3].removeprefix("saved: "))
    assert saved.parent == root / "classifiers" and saved.is_file()
    cached = load_classifier(
        get_backend("torch", "cpu"), "mnist", root, 28, TINY_RECIPE, train_if_missing=False
    )
    assert cached.info["held_out_accuracy"] == pytest.approx(accuracy / 100, abs=5e-5)


# -- gx generate --------------------------------------------------------------------------------


def generated(run: Path, out: Path, *options: str) -> np.ndarray:
    code, output = gx(
        "generate",
        "--checkpoint",
        run,
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--out",
        out,
        *options,
    )
    assert code == 0, output
    return np.load(out)


def test_generate_count_of_an_unconditional_model(gan_run, tmp_path):
    assert generated(gan_run, tmp_path / "five.npy", "--count", "5").shape == (5, 1, 28, 28)
    assert generated(gan_run, tmp_path / "default.npy").shape == (16, 1, 28, 28)


def test_generate_seed_and_labels_change_the_images(cgan_run, tmp_path):
    first = generated(cgan_run, tmp_path / "a.npy", "--labels", "3,3", "--seed", "1")
    assert np.array_equal(
        first, generated(cgan_run, tmp_path / "b.npy", "--labels", "3,3", "--seed", "1")
    )
    other_seed = generated(cgan_run, tmp_path / "c.npy", "--labels", "3,3", "--seed", "2")
    other_labels = generated(cgan_run, tmp_path / "d.npy", "--labels", "5,5", "--seed", "1")
    for other in (other_seed, other_labels):
        assert np.abs(other - first).max() > 1e-3


@pytest.mark.parametrize(
    "case, message",
    [
        ("labels for an unconditional model", "unconditional"),
        ("noise for another count", "3 images were asked for"),
        ("unreadable noise file", "cannot read --noise"),
    ],
)
def test_generate_errors_exit_2_and_write_nothing(gan_run, cgan_run, tmp_path, case, message):
    noise = tmp_path / "z.npy"
    if case == "labels for an unconditional model":
        options = ["--checkpoint", gan_run, "--labels", "1,2"]
    elif case == "noise for another count":
        np.save(noise, np.zeros((2, 100), np.float32))
        options = ["--checkpoint", cgan_run, "--labels", "1,2,3", "--noise", noise]
    else:
        noise.write_bytes(b"not a numpy file")
        options = ["--checkpoint", cgan_run, "--labels", "1", "--noise", noise]
    code, output = gx("generate", *options, "--backend", "torch", "--out", tmp_path / "x.png")
    assert code == 2
    assert output.startswith("error: ") and message in output and output.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


# -- gx eval on Jittor ------------------------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.cross_framework
@pytest.mark.slow
def test_eval_on_jittor_agrees_with_torch(gan_run, classifier28, data_root, tmp_path):
    figures = {}
    for backend in ("torch", "jittor"):
        run = tmp_path / backend
        shutil.copytree(gan_run, run)
        code, output = gx(
            "eval",
            run,
            "--backend",
            backend,
            "--device",
            "cpu",
            "--n",
            "500",
            "--data-root",
            data_root,
        )
        assert code == 0, output
        figures[backend] = json.loads((run / "eval.json").read_text())
    assert figures["jittor"]["backend"]["backend"] == "jittor"
    # The same weights, noise and images: only float32 rounding differs between the backends.
    # The distance is a float64 statistic of 500 images' features, which differ by about 1e-6
    # relative between the backends; its matrix square root amplifies that by the covariances'
    # conditioning, which the fixed images decide, not the CPU: 1e-3 leaves room for 1,000x.
    assert figures["jittor"]["frechet_distance"] == pytest.approx(
        figures["torch"]["frechet_distance"], rel=1e-3
    )
    assert figures["jittor"]["class_histogram"] == figures["torch"]["class_histogram"]


# -- gx parity ----------------------------------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.slow
def test_parity_stops_on_a_non_finite_loss_and_exits_1(mnist_root, tmp_path):
    out = tmp_path / "report"
    code, output = gx(
        "parity",
        experiment_file("gan"),
        "--steps",
        "8",
        "--data-root",
        mnist_root,
        "--out",
        out,
        *SMALL,
        *HUGE_SGD,
    )
    assert code == 1, output
    assert "stopped early: seed 0: torch: the " in output and "loss became" in output
    report = json.loads((out / "parity.json").read_text())
    assert report["within"] is False and 1 <= report["steps"] < 8
    assert report["stopped_early"].startswith("seed 0: torch: ")
    assert len(report["seeds"]) == 1  # the first seed's non-finite loss ends the check
