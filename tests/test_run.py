"""gx run end to end on both backends, on the real MNIST test split.

Every reference experiment writes every artifact; a run stopped and resumed equals a run done in
one go; Ctrl-C stops cleanly and resumes; both backends see the same batches, noise and labels.
One batch size everywhere, because Jittor compiles its kernels per shape.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from gx.backends import get_backend
from gx.checkpoint import load_checkpoint
from gx.cli import main
from gx.config import Experiment, experiment_from_dict, load_experiment, model_for
from gx.data import batch_indices, load_dataset
from gx.train.gan import GanTrainer
from gx.train.run import RunOptions, run_experiment

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("cdcgan", "dcgan", "cgan", "gan")
BACKENDS = (pytest.param("torch"), pytest.param("jittor", marks=pytest.mark.jittor))
BATCH = 16
SHORT = 3  # steps of the artifact runs, which are also the first half of the resume runs
LONG = 6
SETTINGS = ["data.split=test", f"train.batch_size={BATCH}", "train.sample_every=2"]
# 10 tiles of the image size plus 2 px padding around and between them
GRID_PIXELS = {28: 302, 32: 342}
METRIC_KEYS = {
    "step",
    "epoch",
    "d_loss",
    "g_loss",
    "d_real",
    "d_fake",
    "lr_g",
    "lr_d",
    "images_per_s",
}
CHECKPOINT_FILES = {
    "state.json",
    "generator.safetensors",
    "discriminator.safetensors",
    "optimizer_g.safetensors",
    "optimizer_d.safetensors",
}
# The CLI started as its own process, so it gets real signals.
GX_COMMAND = [sys.executable, "-c", "import sys; from gx.cli import main; sys.exit(main())"]


def experiment_path(name: str) -> Path:
    return REPO_ROOT / "experiments" / f"{name}.yaml"


def experiment(name: str, max_steps: int, *extra: str) -> Experiment:
    return load_experiment(
        experiment_path(name), SETTINGS + [f"train.max_steps={max_steps}", *extra]
    )


def cli_arguments(name: str, backend: str, mnist_root: Path) -> list[str]:
    arguments = [
        "run",
        str(experiment_path(name)),
        "--backend",
        backend,
        "--device",
        "cpu",
        "--data-root",
        str(mnist_root),
    ]
    for setting in SETTINGS:
        arguments += ["--set", setting]
    return arguments


def invoke(arguments: list[str]):
    return CliRunner().invoke(main, arguments, catch_exceptions=False)


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def library_run(
    name: str, backend: str, mnist_root: Path, out: Path, max_steps: int, *extra: str
) -> Path:
    result = run_experiment(
        experiment(name, max_steps, *extra),
        RunOptions(
            backend=backend, device="cpu", data_root=str(mnist_root), out=str(out), progress=False
        ),
    )
    assert (result.stopped, result.steps, result.folder) == ("finished", max_steps, out)
    return out


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, mnist_root):
    """Made on first use: a SHORT-step run of an experiment on a backend, via the CLI for one
    experiment per backend and via the library for the rest."""
    root = tmp_path_factory.mktemp("runs")
    made: dict[tuple[str, str], Path] = {}

    def make(name: str, backend: str) -> Path:
        if (name, backend) in made:
            return made[name, backend]
        out = root / f"{name}-{backend}"
        if name == ("cdcgan" if backend == "torch" else "gan"):
            result = invoke(
                cli_arguments(name, backend, mnist_root)
                + ["--max-steps", str(SHORT), "--out", str(out)]
            )
            assert result.exit_code == 0, result.output
            assert f"run folder: {out}\nsteps: {SHORT}  d_loss: " in result.stdout
        else:
            library_run(name, backend, mnist_root, out, SHORT)
        made[name, backend] = out
        return out

    return make


def assert_finite_numbers(value) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert_finite_numbers(item)
    elif isinstance(value, list):
        for item in value:
            assert_finite_numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        assert math.isfinite(value)


# --- artifacts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_run_writes_every_artifact(short_runs, name, backend):
    folder = short_runs(name, backend)
    ran = experiment(name, SHORT)
    model = model_for(ran)
    size = ran.data.image_size

    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert experiment_from_dict(saved, "config.yaml") == ran
    info = json.loads((folder / "run.json").read_text())
    assert info["backend"]["backend"] == backend and info["backend"]["device"] == "cpu"

    lines = metrics(folder)
    assert [line["step"] for line in lines] == list(range(1, SHORT + 1))
    for line in lines:
        assert set(line) == METRIC_KEYS and line["epoch"] == 0
        assert all(math.isfinite(line[key]) for key in METRIC_KEYS - {"step", "epoch"})
        assert line["lr_g"] == ran.optimizer.generator.lr
        assert line["lr_d"] == ran.optimizer.discriminator.lr
        if ran.train.loss == "bce":  # a sigmoid output; cgan (least squares) has a plain score
            assert 0 <= line["d_real"] <= 1 and 0 <= line["d_fake"] <= 1
        assert line["images_per_s"] > 0

    # every sample_every=2 steps, plus the last step
    samples = sorted((folder / "samples").iterdir())
    assert [path.name for path in samples] == ["step-000002.png", "step-000003.png"]
    for path in samples:
        with Image.open(path) as grid:
            assert grid.format == "PNG" and grid.mode == "L"
            assert grid.size == (GRID_PIXELS[size],) * 2
            assert np.asarray(grid).std() > 0
    with Image.open(folder / "samples.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == len(samples)
        assert gif.size == (GRID_PIXELS[size],) * 2
    with Image.open(folder / "losses.png") as plot:
        assert plot.format == "PNG" and plot.width > 100 and plot.height > 100

    # and the average of G's weights where the experiment keeps one (the cdcgan flagship)
    averaged = {"generator_ema.safetensors"} if ran.train.ema_decay is not None else set()
    assert {path.name for path in (folder / "checkpoint").iterdir()} == CHECKPOINT_FILES | averaged
    assert not list(folder.glob("checkpoint.*"))  # no staging folder left behind
    checkpoint = load_checkpoint(folder)
    assert checkpoint.state["step"] == SHORT and checkpoint.state["experiment"] == name
    assert checkpoint.model.to_dict() == model.to_dict()
    for network, spec in (
        (checkpoint.generator, model.generator),
        (checkpoint.discriminator, model.discriminator),
    ):
        assert {key: value.shape for key, value in network.items()} == {
            key: tuple(shape) for key, shape in spec.state_shapes().items()
        }
        assert all(np.isfinite(value).all() for value in network.values())

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["steps"] == SHORT and summary["stopped"] == "finished"
    assert summary["final"]["d_loss"] == lines[-1]["d_loss"]
    assert summary["d_loss_range"] == [
        min(line["d_loss"] for line in lines),
        max(line["d_loss"] for line in lines),
    ]
    assert_finite_numbers(summary)
    assert summary["images_per_s_median"] > 0


def test_zero_epochs_writes_the_initial_state(tmp_path, mnist_root):
    folder = tmp_path / "untrained"
    result = invoke(
        cli_arguments("gan", "torch", mnist_root)
        + ["--set", "train.epochs=0", "--out", str(folder)]
    )
    assert result.exit_code == 0, result.output
    assert f"run folder: {folder}\nsteps: 0  d_loss: -  g_loss: -" in result.stdout
    # nothing trained, so there are no metrics and no loss plot
    assert not (folder / "metrics.jsonl").exists() and not (folder / "losses.png").exists()
    assert [path.name for path in (folder / "samples").iterdir()] == ["step-000000.png"]
    assert load_checkpoint(folder).state["step"] == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["steps"], summary["stopped"], summary["final"]["d_loss"]) == (
        0,
        "finished",
        None,
    )


# --- resume ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["cgan", "cdcgan"])  # dropout, g_then_d / batch norm, d_then_g
@pytest.mark.slow
def test_resumed_run_equals_straight_run(short_runs, tmp_path, mnist_root, name, backend):
    # Sampling and checkpointing every step must not change the numbers either.
    straight = library_run(
        name,
        backend,
        mnist_root,
        tmp_path / "straight",
        LONG,
        "train.sample_every=1",
        "train.checkpoint_every=1",
    )
    resumed = tmp_path / "resumed"
    shutil.copytree(short_runs(name, backend), resumed)
    result = invoke(
        cli_arguments(name, backend, mnist_root)
        + ["--resume", str(resumed), "--max-steps", str(LONG)]
    )
    assert result.exit_code == 0, result.output
    assert f"steps: {LONG}" in result.stdout

    def without_speed(lines: list[dict]) -> list[dict]:
        return [
            {key: value for key, value in line.items() if key != "images_per_s"} for line in lines
        ]

    expected = without_speed(metrics(straight))
    assert [line["step"] for line in expected] == list(range(1, LONG + 1))
    assert without_speed(metrics(resumed)) == expected
    first, second = load_checkpoint(straight), load_checkpoint(resumed)
    assert first.state["step"] == second.state["step"] == LONG
    assert first.state["rng"] == second.state["rng"]
    for part in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
        one, other = getattr(first, part), getattr(second, part)
        assert one.keys() == other.keys()
        assert all(np.array_equal(one[key], other[key]) for key in one), part
    for step in (4, 6):
        path = f"samples/step-{step:06d}.png"
        with Image.open(straight / path) as one, Image.open(resumed / path) as other:
            assert np.array_equal(np.asarray(one), np.asarray(other))
    assert json.loads((resumed / "summary.json").read_text())["steps"] == LONG


# --- Ctrl-C ------------------------------------------------------------------------------------


def metrics_lines(folder: Path) -> list[str]:
    """Complete lines only: the run may be writing the next one."""
    text = (folder / "metrics.jsonl").read_text()
    return text.splitlines()[: text.count("\n")]


@pytest.mark.slow
def test_ctrl_c_stops_with_a_checkpoint_and_resumes(tmp_path, mnist_root):
    folder = tmp_path / "interrupted"
    arguments = cli_arguments("cdcgan", "torch", mnist_root)
    process = subprocess.Popen(
        GX_COMMAND + arguments + ["--max-steps", "100000", "--out", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600  # a guard against a hung start, not a speed limit
        while not (folder / "metrics.jsonl").exists() or len(metrics_lines(folder)) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no two steps within 600 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        # Counted after the signal: at most the step in flight when it came may follow.
        written_when_stopped = len(metrics_lines(folder))
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    lines = metrics(folder)
    last = lines[-1]["step"]
    assert [line["step"] for line in lines] == list(range(1, last + 1)) and last >= 2
    assert last <= written_when_stopped + 1  # stopped after the current step, not later
    assert f"interrupted at step {last}; continue with --resume {folder}" in stderr
    assert f"run folder: {folder}\nsteps: {last}" in stdout
    state = json.loads((folder / "checkpoint" / "state.json").read_text())
    assert state["step"] == last
    assert json.loads((folder / "summary.json").read_text())["stopped"] == "interrupted"

    result = invoke(arguments + ["--resume", str(folder), "--max-steps", str(last + 2)])
    assert result.exit_code == 0, result.output
    assert [line["step"] for line in metrics(folder)] == list(range(1, last + 3))
    assert load_checkpoint(folder).state["step"] == last + 2


# --- identical inputs on both backends ---------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.slow
def test_both_backends_draw_the_same_noise_labels_and_batches(mnist_root):
    ran = experiment("cdcgan", SHORT)
    model = model_for(ran)
    trainers = {
        name: GanTrainer(get_backend(name, "cpu"), model, ran) for name in ("torch", "jittor")
    }
    for count in (BATCH, BATCH, 5):
        torch_draw, jittor_draw = (trainers[name].draw_inputs(count) for name in trainers)
        assert torch_draw.keys() == jittor_draw.keys() == {"z", "label"}
        assert torch_draw["z"].shape == (count, 100, 1, 1)
        assert torch_draw["label"].dtype == np.int64
        assert 0 <= torch_draw["label"].min() and torch_draw["label"].max() < 10
        for key in torch_draw:
            assert np.array_equal(torch_draw[key], jittor_draw[key])

    images, labels = load_dataset("mnist", mnist_root, "test", 28)
    order = batch_indices(len(images), BATCH, ran.seed, 0)
    assert np.array_equal(order, batch_indices(len(images), BATCH, ran.seed, 0))
    assert not np.array_equal(order, batch_indices(len(images), BATCH, ran.seed, 1))
    assert order.shape == (len(images) // BATCH, BATCH)
    assert len(np.unique(order)) == order.size  # an epoch shows each image at most once
    for name, trainer in trainers.items():
        backend = trainer.backend
        data_images, data_labels = backend.tensor(images), backend.tensor(labels)
        for batch in order[:2]:
            real_images = backend.take(data_images, batch)
            real_labels = backend.take(data_labels, batch)
            assert np.array_equal(backend.numpy(real_images), images[batch]), name
            assert np.array_equal(backend.numpy(real_labels), labels[batch]), name
            trainer.step(real_images, real_labels)
    # The steps drew the same noise and labels (D then G: two draws per step) on both backends.
    states = [trainer.noise_rng.bit_generator.state for trainer in trainers.values()]
    assert states[0] == states[1]
    assert all(trainer.step_index == 2 for trainer in trainers.values())
