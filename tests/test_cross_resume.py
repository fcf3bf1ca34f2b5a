"""A run continued on the other framework is the same training, within float32's rounding floor.

From a checkpoint at step K written by one backend, ``gx run --resume RUN --backend OTHER``
continues the run. The reference is the continuation on the original backend, which is the run
done in one go, bit for bit (test_run.test_resumed_run_equals_straight_run). The floor is how far
equally valid roundings of PyTorch float32 drift from it over the same steps from the same
checkpoint: PyTorch float64 and PyTorch at another CPU thread count, trained in lockstep by gx
parity's harness (gx.parity.lockstep.continuation_parity), and the verdict is gx parity's: the
rule (``within_floor``) on most of three seeds. Short runs at batch 16 on the MNIST test split,
as tests/test_parity.py keeps parity fast; benchmarks/cross_resume.py measures longer ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from support import experiment_file
from tiny import tiny_experiment

from gx.backends import get_backend
from gx.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gx.cli import main
from gx.config import Experiment, load_experiment, model_for
from gx.parity import SeedRun, majority_within, within_floor
from gx.parity.agreement import agrees
from gx.parity.lockstep import continuation_parity, crossings, loss_differences
from gx.train.gan import GanTrainer
from gx.train.run import RunOptions, run_experiment

pytestmark = [pytest.mark.jittor, pytest.mark.cross_framework]

BATCH = 16
SETTINGS = ["data.split=test", f"train.batch_size={BATCH}"]
CHECKPOINT_STEP = 3  # K: the steps trained before the other framework takes over
# Steps after the checkpoint: test_parity's lockstep lengths (cgan's floor is crossed later).
STEPS_AFTER = {"cdcgan": 6, "cgan": 12}
# Seeds per verdict, the experiment's own and the next ones: as in gx parity, each seed's verdict
# is a draw the CPU's kernels make, and most of them decide (docs/parity.md).
SEEDS = 3
DIRECTIONS = [("torch", "jittor"), ("jittor", "torch")]
PARTS = ("generator", "discriminator", "optimizer_g", "optimizer_d")


def experiment(name: str, max_steps: int, seed: int = 0) -> Experiment:
    return load_experiment(
        experiment_file(name), SETTINGS + [f"train.max_steps={max_steps}", f"seed={seed}"]
    )


def gx_resume(name: str, backend: str, folder: Path, max_steps: int, mnist_root: Path) -> Result:
    """``gx run EXPERIMENT --resume FOLDER --backend BACKEND --max-steps N``, as a user types it."""
    arguments = ["run", experiment_file(name), "--backend", backend, "--device", "cpu"]
    arguments += ["--data-root", str(mnist_root), "--resume", str(folder)]
    arguments += ["--max-steps", str(max_steps)]
    for setting in SETTINGS:
        arguments += ["--set", setting]
    return CliRunner().invoke(main, arguments, catch_exceptions=False)


def resume(name: str, backend: str, folder: Path, max_steps: int, mnist_root: Path) -> Result:
    result = gx_resume(name, backend, folder, max_steps, mnist_root)
    assert result.exit_code == 0, result.output
    return result


def metrics(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def losses_after(folder: Path, step: int) -> dict[str, list[float | None]]:
    """The run's losses of the steps after ``step``, keyed as the lockstep harness keys them."""
    later = [line for line in metrics(folder) if line["step"] > step]
    return {"d": [line["d_loss"] for line in later], "g": [line["g_loss"] for line in later]}


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory, mnist_root) -> Callable[..., Path]:
    """The run of K steps of an experiment on a backend, trained once per module."""
    made: dict[tuple[str, str, int], Path] = {}

    def make(name: str, backend: str, seed: int = 0) -> Path:
        if (name, backend, seed) not in made:
            out = tmp_path_factory.mktemp("first") / f"{name}-{backend}-{seed}"
            run_experiment(
                experiment(name, CHECKPOINT_STEP, seed),
                RunOptions(
                    backend=backend,
                    device="cpu",
                    data_root=str(mnist_root),
                    out=str(out),
                    progress=False,
                ),
            )
            made[name, backend, seed] = out
        return made[name, backend, seed]

    return make


@pytest.fixture(scope="module")
def continuations(first_runs, mnist_root) -> Callable[[str, str], list[SeedRun]]:
    """Both backends continuing the checkpoints of the first runs of every seed in lockstep,
    beside the floor's references, once per module: one SeedRun per seed, seed 0 first."""
    made: dict[tuple[str, str], list[SeedRun]] = {}

    def continuation(name: str, writer: str, seed: int) -> SeedRun:
        total = CHECKPOINT_STEP + STEPS_AFTER[name]
        start = load_checkpoint(first_runs(name, writer, seed))
        run = continuation_parity(
            experiment(name, total, seed), start, total, "cpu", str(mnist_root)
        )
        assert not run.stopped_early and run.steps == STEPS_AFTER[name]
        return run

    def make(name: str, writer: str) -> list[SeedRun]:
        if (name, writer) not in made:
            made[name, writer] = [continuation(name, writer, seed) for seed in range(SEEDS)]
        return made[name, writer]

    return make


@pytest.mark.parametrize("writer, reader", DIRECTIONS)
@pytest.mark.parametrize("name", ["cdcgan", "cgan"])  # batch norm, d_then_g / dropout, g_then_d
@pytest.mark.slow
def test_continuation_on_the_other_backend_stays_within_the_floor(
    first_runs, continuations, tmp_path, mnist_root, name, writer, reader
):
    total = CHECKPOINT_STEP + STEPS_AFTER[name]
    folder = tmp_path / "continued"
    shutil.copytree(first_runs(name, writer), folder)
    result = resume(name, reader, folder, total, mnist_root)
    assert (
        f"continuing steps {CHECKPOINT_STEP + 1}.. on {reader} "
        f"(steps 1..{CHECKPOINT_STEP} ran on {writer})"
    ) in result.stderr
    assert f"steps: {total}" in result.stdout

    seeds = continuations(name, writer)
    # The command trains exactly what the harness trains on that backend, and that stays with
    # the original backend's continuation as long as float32's own roundings do.
    assert losses_after(folder, CHECKPOINT_STEP) == seeds[0].losses[reader]
    verdict = "; ".join(run.summary() for run in seeds)
    print(f"{name} {writer} -> {reader}: {verdict}")
    # the first continued step's losses come from one pass from the restored state: within the
    # floor of that same step (gx.parity.agreement)
    assert all(agrees(run.cross[0], run.floor[0]) for run in seeds), verdict
    assert majority_within([(run.cross, run.floor) for run in seeds]), verdict
    # and the run folder says which backend trained which steps
    segments = load_checkpoint(folder).state["segments"]
    assert [
        (entry["backend"]["backend"], entry["first_step"], entry["last_step"]) for entry in segments
    ] == [(writer, 1, CHECKPOINT_STEP), (reader, CHECKPOINT_STEP + 1, total)]
    assert json.loads((folder / "run.json").read_text())["segments"] == segments


def with_adam_restarted(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint with both optimizers' step counts at 0: Adam's moments kept, its bias
    correction restarted, as a resume that lost the step counters would train."""
    restarted = {"step": np.array(0.0)}
    return Checkpoint(
        checkpoint.model,
        checkpoint.generator,
        checkpoint.discriminator,
        {**checkpoint.optimizer_g, **restarted},
        {**checkpoint.optimizer_d, **restarted},
        checkpoint.state,
    )


@pytest.mark.slow
def test_a_continuation_that_loses_adams_step_count_is_caught(
    first_runs, continuations, tmp_path, mnist_root
):
    """The negative control: the rule tells a continuation that lost state from the real one."""
    total = CHECKPOINT_STEP + STEPS_AFTER["cdcgan"]
    folder = tmp_path / "restarted"
    shutil.copytree(first_runs("cdcgan", "torch"), folder)
    save_checkpoint(folder / "checkpoint", with_adam_restarted(load_checkpoint(folder)))
    resume("cdcgan", "jittor", folder, total, mnist_root)

    continuation = continuations("cdcgan", "torch")[0]
    cross = loss_differences(
        continuation.losses["torch"], losses_after(folder, CHECKPOINT_STEP), continuation.steps
    )
    # D's update with the restarted bias correction already moves the first step's G loss
    assert cross[0] > 1e-3, cross[0]
    assert not within_floor(cross, continuation.floor), crossings(cross)


@pytest.mark.parametrize("writer, reader", DIRECTIONS)
@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
def test_the_other_backend_restores_every_piece_of_state(first_runs, name, writer, reader):
    """Weights, batch-norm statistics, Adam's moments and step counts, the noise and dropout
    streams and the step: what the other backend holds after restoring is the checkpoint."""
    checkpoint = load_checkpoint(first_runs(name, writer))
    ran = experiment(name, CHECKPOINT_STEP)
    trainer = GanTrainer(get_backend(reader, "cpu"), model_for(ran), ran)
    trainer.restore(checkpoint, "the checkpoint")
    state = trainer.get_state()
    for part in PARTS:
        saved, restored = getattr(checkpoint, part), state[part]
        assert restored.keys() == saved.keys(), part
        for key in saved:
            assert np.array_equal(np.asarray(restored[key], np.float32), saved[key]), key
    assert float(state["optimizer_g"]["step"]) == float(state["optimizer_d"]["step"]) == 3.0
    assert any(key.endswith("running_var") for key in state["discriminator"]) == (name == "cdcgan")
    assert state["rng"] == checkpoint.state["rng"] and state["step"] == CHECKPOINT_STEP


def note_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("continuing")]


@pytest.mark.slow
def test_segments_are_kept_across_two_resumes(first_runs, tmp_path, mnist_root):
    """A run folder written before gx recorded segments, continued on Jittor, then on PyTorch."""
    folder = tmp_path / "run"
    shutil.copytree(first_runs("cdcgan", "torch"), folder)
    state_path = folder / "checkpoint" / "state.json"
    older = json.loads(state_path.read_text())
    del older["segments"]
    state_path.write_text(json.dumps(older))

    on_jittor = resume("cdcgan", "jittor", folder, 5, mnist_root)
    assert note_lines(on_jittor) == ["continuing steps 4.. on jittor (steps 1..3 ran on torch)"]
    on_torch = resume("cdcgan", "torch", folder, 6, mnist_root)
    assert note_lines(on_torch) == [
        "continuing steps 6.. on torch (steps 1..3 ran on torch, 4..5 on jittor)"
    ]
    # nothing left to train: no line, no segment, on either framework
    assert note_lines(resume("cdcgan", "jittor", folder, 6, mnist_root)) == []

    state = load_checkpoint(folder).state
    segments = state["segments"]
    assert [
        (entry["backend"]["backend"], entry["first_step"], entry["last_step"]) for entry in segments
    ] == [("torch", 1, 3), ("jittor", 4, 5), ("torch", 6, 6)]
    assert segments[0]["started"] is None  # the older folder did not say when it started
    assert all(entry["started"] for entry in segments[1:])
    assert json.loads((folder / "run.json").read_text())["segments"] == segments
    assert state["step"] == 6
    assert [line["step"] for line in metrics(folder)] == list(range(1, 7))


def test_damaged_segments_are_refused(first_runs, tmp_path, mnist_root):
    folder = tmp_path / "damaged"
    shutil.copytree(first_runs("cdcgan", "torch"), folder)
    state_path = folder / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    state["segments"] = [{"first_step": 1}]
    state_path.write_text(json.dumps(state))
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    result = gx_resume("cdcgan", "jittor", folder, 5, mnist_root)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the checkpoint of '{folder}' cannot be read (its segments do not describe "
        "steps 1..3); it is damaged: resume from an intact copy of the run folder\n"
    )
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before


SGD = {"kind": "sgd", "lr": 0.05, "momentum": 0.9}


@pytest.mark.parametrize("writer, reader", DIRECTIONS)
@pytest.mark.slow
def test_sgd_momentum_carries_over(writer, reader):
    """PyTorch's SGD keeps no step count, so its checkpoints say step 0; the momentum buffers
    they hold must still drive the next update on Jittor (and the reverse)."""
    ran = tiny_experiment(optimizer={"generator": SGD, "discriminator": SGD})
    model = model_for(ran)
    draw = np.random.default_rng(0)
    steps = [
        (draw.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32), draw.integers(0, 10, 8))
        for _ in range(3)
    ]

    def train(trainer: GanTrainer, images: np.ndarray, labels: np.ndarray) -> None:
        trainer.step(trainer.backend.tensor(images), trainer.backend.tensor(labels))

    source = GanTrainer(get_backend(writer, "cpu"), model, ran)
    for images, labels in steps[:2]:
        train(source, images, labels)
    state = source.get_state()
    checkpoint = Checkpoint(
        model,
        state["generator"],
        state["discriminator"],
        state["optimizer_g"],
        state["optimizer_d"],
        {"rng": state["rng"], "step": state["step"]},
    )
    target = GanTrainer(get_backend(reader, "cpu"), model, ran)
    target.restore(checkpoint, "the checkpoint")
    for trainer in (source, target):
        train(trainer, *steps[2])
    continued, crossed = source.get_state(), target.get_state()
    for part in ("generator", "discriminator"):
        for key, value in continued[part].items():
            moved = np.abs(value - getattr(checkpoint, part)[key]).max()
            assert moved > 0, key
            # float32 rounding of one update, far below the momentum term (0.9 * lr * buffer)
            assert np.abs(crossed[part][key] - value).max() <= 1e-3 * moved, key
