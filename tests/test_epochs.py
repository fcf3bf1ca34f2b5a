"""Runs that cross epoch boundaries: reshuffles, learning-rate milestones, eval at the end, and a
resume from a checkpoint older than the last metrics line.

The tiny linear GAN of tiny.py, unconditional (so the evaluation has no label agreement), on the
10,000 test images in batches of 2,000 makes an epoch five steps; twelve steps end two steps into
the third epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny import tiny_experiment

from gx.backends.torch.backend import TorchBackend
from gx.checkpoint import load_checkpoint
from gx.data import batch_indices, batches
from gx.train.gan import GanTrainer
from gx.train.run import RunOptions, run_experiment

IMAGES, BATCH, STEPS = 10_000, 2_000, 12
PER_EPOCH = IMAGES // BATCH
CHECKPOINT_EVERY, CRASH_AFTER = 4, 10  # the last checkpoint before the crash holds step 8
LR = 2e-4
MILESTONES = [{"epoch": 1, "factor": 0.5}, {"epoch": 2, "factor": 0.1}]
LR_BY_EPOCH = {0: LR, 1: LR * 0.5, 2: LR * 0.5 * 0.1}


class SimulatedCrash(Exception):
    """The process 'dies' in the middle of training."""


def experiment() -> Any:
    return tiny_experiment(
        conditional=False,
        train={
            "epochs": 3,
            "batch_size": BATCH,
            "max_steps": STEPS,
            "checkpoint_every": CHECKPOINT_EVERY,
            "eval_at_end": True,
        },
        optimizer={"generator": {"lr": LR}, "discriminator": {"lr": LR}, "milestones": MILESTONES},
    )


def run(
    folder: Path, data_root: Path, resume: bool = False, crash_after: int | None = None
) -> list[np.ndarray]:
    """Train (or resume) the run in ``folder``; returns the image indices of each step's batch.

    With ``crash_after`` the process 'dies' at the start of the step after that one.
    """
    batches: list[np.ndarray] = []
    take, step = TorchBackend.take, GanTrainer.step

    def recorded_take(self: TorchBackend, data: Any, indices: np.ndarray) -> Any:
        batches.append(np.array(indices))
        return take(self, data, indices)

    def step_or_crash(self: GanTrainer, *args: Any) -> Any:
        if self.step_index == crash_after:
            raise SimulatedCrash
        return step(self, *args)

    options = RunOptions(
        backend="torch",
        device="cpu",
        data_root=str(data_root),
        progress=False,
        out=None if resume else str(folder),
        resume=str(folder) if resume else None,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TorchBackend, "take", recorded_take)
        patch.setattr(GanTrainer, "step", step_or_crash)
        try:
            run_experiment(experiment(), options)
        except SimulatedCrash:
            pass
    return batches


def metrics(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def without_speed(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in line.items() if key != "images_per_s"} for line in lines]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, data_root: Path, classifier28: Any
) -> dict[str, Any]:
    """A straight run; the same run crashed after step 10 (checkpoint at 8); then resumed."""
    root = tmp_path_factory.mktemp("epochs")
    straight, interrupted = root / "straight", root / "interrupted"
    result: dict[str, Any] = {"straight": straight, "interrupted": interrupted}
    result["straight_batches"] = run(straight, data_root)
    run(interrupted, data_root, crash_after=CRASH_AFTER)
    result["before_resume"] = {
        "metrics": [line["step"] for line in metrics(interrupted)],
        "checkpoint": load_checkpoint(interrupted).state["step"],
        "summary": (interrupted / "summary.json").exists(),
    }
    result["resumed_batches"] = run(interrupted, data_root, resume=True)
    return result


@pytest.mark.slow
def test_every_epoch_shows_every_image_once_in_a_new_order(runs):
    batches = runs["straight_batches"]
    assert len(batches) == STEPS and all(batch.shape == (BATCH,) for batch in batches)
    epochs = [
        np.concatenate(batches[start : start + PER_EPOCH]) for start in range(0, STEPS, PER_EPOCH)
    ]
    for order in epochs[:2]:  # the two complete epochs
        assert np.array_equal(np.sort(order), np.arange(IMAGES))
    # A reshuffle, not the same order again: the first batches share about a fifth of images.
    shared = len(np.intersect1d(epochs[0][:BATCH], epochs[1][:BATCH]))
    assert shared < BATCH // 2
    assert not np.array_equal(epochs[1][: 2 * BATCH], epochs[2])


def test_metrics_follow_epochs_and_learning_rate_milestones(runs):
    lines = metrics(runs["straight"])
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    assert [line["epoch"] for line in lines] == [step // PER_EPOCH for step in range(STEPS)]
    # the rates are float64 Python arithmetic, a few operations each: 1e-12 is rounding's
    # slack, the same on every CPU
    for line in lines:
        expected = LR_BY_EPOCH[line["epoch"]]
        assert line["lr_g"] == pytest.approx(expected, rel=1e-12)
        assert line["lr_d"] == pytest.approx(expected, rel=1e-12)


def test_eval_at_end_writes_the_figures_into_the_summary(runs):
    summary = json.loads((runs["straight"] / "summary.json").read_text())
    written = json.loads((runs["straight"] / "eval.json").read_text())
    assert summary["eval"] == written
    assert written["step"] == STEPS and written["n"] == IMAGES
    assert written["agreement"] is None  # unconditional
    assert np.isfinite(written["frechet_distance"]) and written["frechet_distance"] > 0
    assert sum(written["class_histogram"]) == IMAGES


def test_resume_from_a_checkpoint_older_than_the_metrics_equals_the_straight_run(runs):
    before = runs["before_resume"]
    # The crash left metrics two steps past the checkpoint, and no summary.
    assert before == {
        "metrics": list(range(1, CRASH_AFTER + 1)),
        "checkpoint": CHECKPOINT_EVERY * (CRASH_AFTER // CHECKPOINT_EVERY),
        "summary": False,
    }
    straight, resumed = runs["straight"], runs["interrupted"]
    assert without_speed(metrics(resumed)) == without_speed(metrics(straight))
    # Resumed mid-epoch: the same batches as the straight run from step 9 on.
    steps_left = STEPS - before["checkpoint"]
    assert len(runs["resumed_batches"]) == steps_left
    for mine, theirs in zip(runs["resumed_batches"], runs["straight_batches"][-steps_left:]):
        assert np.array_equal(mine, theirs)
    first, second = load_checkpoint(straight), load_checkpoint(resumed)
    assert first.state["step"] == second.state["step"] == STEPS
    for part in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
        one, other = getattr(first, part), getattr(second, part)
        assert all(np.array_equal(one[key], other[key]) for key in one), part
    evaluations = [json.loads((folder / "eval.json").read_text()) for folder in (straight, resumed)]
    for evaluation in evaluations:
        evaluation.pop("run"), evaluation.pop("seconds")
    assert evaluations[0] == evaluations[1]


def test_batches_resumed_at_any_step_continue_the_same_order():
    whole = list(batches(100, 16, seed=3, start=0, stop=20))  # 6 batches an epoch
    resumed = list(batches(100, 16, seed=3, start=8, stop=20))
    assert [b.step for b in whole] == list(range(20))
    assert [b.epoch for b in whole] == [step // 6 for step in range(20)]
    for late, early in zip(resumed, whole[8:]):
        np.testing.assert_array_equal(late.indices, early.indices)
    np.testing.assert_array_equal(whole[7].indices, batch_indices(100, 16, 3, 1)[1])
    assert [b.step for b in whole if b.starts_epoch] == [0, 6, 12, 18]
    assert [b.step for b in resumed if b.starts_epoch] == [8, 12, 18]
