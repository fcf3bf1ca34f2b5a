"""A crash at any point of save_checkpoint leaves a checkpoint that --resume, strip and eval find.

A crash is simulated by making save_checkpoint's n-th file-system operation (removing a folder,
writing a weights file, renaming) raise instead of running, for n = 0, 1, ... until a save gets
through. Whatever it leaves on disk must hold a complete checkpoint: the old one while the crash
comes before the new one is complete, the new one from then on.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from support import gx
from tiny import tiny_experiment

import gx.checkpoint as checkpoint_module
import gx.train.run as run_module
from gx.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gx.models import build_model
from gx.spec import initial_state
from gx.train.run import RunOptions, run_experiment


class SimulatedCrash(Exception):
    """Raised in place of a file-system operation: the process 'died' just before it."""


@contextmanager
def crash_before(operation: int) -> Iterator[None]:
    """Inside the block, save_checkpoint's file-system operation number ``operation`` (from 0)
    raises SimulatedCrash instead of running; the ones before it run as usual."""
    counter = itertools.count()

    def counted(function: Callable[..., Any]) -> Callable[..., Any]:
        def operation_or_crash(*args: Any, **kwargs: Any) -> Any:
            if next(counter) == operation:
                raise SimulatedCrash(f"crash before {function.__name__}{args}")
            return function(*args, **kwargs)

        return operation_or_crash

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint_module, "save_file", counted(checkpoint_module.save_file))
        patch.setattr(checkpoint_module.os, "replace", counted(os.replace))
        patch.setattr(checkpoint_module.shutil, "rmtree", counted(shutil.rmtree))
        yield


MODEL = build_model(
    "custom",
    generator={"inputs": {"z": [2]}, "layers": [{"name": "fc", "kind": "linear", "out": 4}]},
    discriminator={
        "inputs": {"image": [4]},
        "layers": [{"name": "score", "kind": "linear", "out": 1}],
    },
)


def checkpoint_at(step: int) -> Checkpoint:
    """A checkpoint whose weights (drawn from seed ``step``) say which step it is."""
    return Checkpoint(
        MODEL,
        initial_state(MODEL.generator, step),
        initial_state(MODEL.discriminator, step),
        {},
        {},
        {"step": step},
    )


def found_step(run: Path) -> int:
    """The step of the checkpoint gx finds in ``run``, checked to be complete and intact."""
    found = load_checkpoint(run)
    step = found.state["step"]
    expected = checkpoint_at(step)
    for part in ("generator", "discriminator"):
        saved, wanted = getattr(found, part), getattr(expected, part)
        assert saved.keys() == wanted.keys()
        assert all(np.array_equal(saved[key], wanted[key]) for key in wanted), (run, part)
    return step


def crash_sweep(
    prepare: Callable[[Path], None], step: int, root: Path
) -> tuple[list[int], list[Path]]:
    """For n = 0, 1, ...: a run folder made by ``prepare``, then a save of ``step`` that crashes
    before its n-th operation, until one save gets through. Returns the step found after each
    crash, and the folders the crashes left."""
    found, folders = [], []
    for point in itertools.count():
        run = root / f"crash-{point}"
        prepare(run)
        try:
            with crash_before(point):
                save_checkpoint(run / "checkpoint", checkpoint_at(step))
        except SimulatedCrash:
            found.append(found_step(run))
            folders.append(run)
            continue
        # The save that got through leaves the one checkpoint folder, nothing else.
        assert sorted(path.name for path in run.iterdir()) == ["checkpoint"]
        assert found_step(run) == step
        return found, folders


def assert_old_then_new(found: list[int], old: int, new: int) -> None:
    """The old checkpoint until the new one is complete, then the new one; never a gap."""
    switch = found.index(new)
    assert found == [old] * switch + [new] * (len(found) - switch), found
    assert switch >= 1 and len(found) - switch >= 1, found


def saved_steps(*steps: int) -> Callable[[Path], None]:
    def prepare(run: Path) -> None:
        for step in steps:
            save_checkpoint(run / "checkpoint", checkpoint_at(step))

    return prepare


def test_every_crash_point_of_a_save_leaves_the_newest_complete_checkpoint(tmp_path):
    found, folders = crash_sweep(saved_steps(1), 2, tmp_path)
    assert_old_then_new(found, 1, 2)
    # The crash window the sweep must cover: the old checkpoint moved aside, the new one not yet
    # in its place, so no checkpoint/ folder at all.
    assert any(not (run / "checkpoint").exists() for run in folders)


def test_a_save_after_a_crash_at_any_point_recovers(tmp_path):
    """A second crash, at any point of the next save, on top of each first crash."""
    _, first_crashes = crash_sweep(saved_steps(1), 2, tmp_path / "first")
    for number, crashed in enumerate(first_crashes):
        left = found_step(crashed)

        def prepare(run: Path, crashed: Path = crashed) -> None:
            shutil.copytree(crashed, run)

        found, _ = crash_sweep(prepare, 3, tmp_path / f"second-{number}")
        assert_old_then_new(found, left, 3)


def test_first_save_crashing_leaves_nothing_that_looks_like_a_checkpoint(tmp_path):
    with crash_before(4), pytest.raises(SimulatedCrash):  # after some weights files
        save_checkpoint(tmp_path / "run" / "checkpoint", checkpoint_at(1))
    code, output = gx("generate", "--checkpoint", tmp_path / "run", "--out", tmp_path / "x.png")
    assert code == 2 and "holds no gx checkpoint" in output


# -- a real run crashing while it saves: resume, strip and eval carry on --------------------------

TINY = {"train": {"max_steps": 4, "checkpoint_every": 2}}
CRASHING_SAVE = 2  # the step whose checkpoint save crashes


def run_tiny(folder: Path, data_root: Path, resume: bool = False) -> None:
    run_experiment(
        tiny_experiment(**TINY),
        RunOptions(
            backend="torch",
            device="cpu",
            data_root=str(data_root),
            progress=False,
            out=None if resume else str(folder),
            resume=str(folder) if resume else None,
        ),
    )


def crashed_runs(tmp_path: Path, data_root: Path) -> list[Path]:
    """One run per crash point of its step-2 checkpoint save, each stopped by that crash."""
    runs = []
    for point in itertools.count():
        folder = tmp_path / f"crashed-{point}"

        def save_or_crash(target: Path, checkpoint: Checkpoint, point: int = point) -> None:
            if checkpoint.state["step"] != CRASHING_SAVE:
                save_checkpoint(target, checkpoint)
                return
            with crash_before(point):
                save_checkpoint(target, checkpoint)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(run_module, "save_checkpoint", save_or_crash)
            try:
                run_tiny(folder, data_root)
            except SimulatedCrash:
                runs.append(folder)
                continue
        return runs


def metrics_without_speed(folder: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in line.items() if key != "images_per_s"} for line in lines]


@pytest.mark.slow
def test_a_run_crashing_at_any_point_of_a_save_resumes_to_the_straight_result(tmp_path, data_root):
    straight = tmp_path / "straight"
    run_tiny(straight, data_root)
    expected = load_checkpoint(straight)
    resumed_from = []
    for folder in crashed_runs(tmp_path, data_root):
        assert [line["step"] for line in metrics_without_speed(folder)] == [1, 2]
        resumed_from.append(load_checkpoint(folder).state["step"])
        run_tiny(folder, data_root, resume=True)
        assert metrics_without_speed(folder) == metrics_without_speed(straight)
        result = load_checkpoint(folder)
        assert result.state["step"] == 4 and result.state["rng"] == expected.state["rng"]
        for part in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
            saved, wanted = getattr(result, part), getattr(expected, part)
            assert all(np.array_equal(saved[key], wanted[key]) for key in wanted), part
        assert sorted(path.name for path in folder.glob("checkpoint*")) == ["checkpoint"]
    # Crashes before the step-2 checkpoint was complete resume from step 0, later ones from 2.
    assert_old_then_new(resumed_from, 0, CRASHING_SAVE)


@pytest.mark.slow
def test_strip_eval_and_resume_find_a_checkpoint_moved_aside(
    cdcgan_run, classifier28, data_root, tmp_path
):
    """The worst point: the old checkpoint in .previous, the new one still in staging."""
    checkpoint = load_checkpoint(cdcgan_run)
    for point in itertools.count():
        run = tmp_path / f"run-{point}"
        shutil.copytree(cdcgan_run, run)
        with crash_before(point), pytest.raises(SimulatedCrash):
            save_checkpoint(run / "checkpoint", checkpoint)
        if not (run / "checkpoint").exists():
            break
    code, output = gx("strip", "123", "--checkpoint", run, "--out", tmp_path / "strip.png")
    assert code == 0, output
    assert "wrote" in output and (tmp_path / "strip.png").is_file()
    code, output = gx("eval", run, "--n", "200", "--data-root", data_root)
    assert code == 0, output
    assert json.loads((run / "eval.json").read_text())["step"] == checkpoint.state["step"]
    code, output = gx(
        "run",
        Path(__file__).resolve().parents[1] / "experiments" / "cdcgan.yaml",
        "--resume",
        run,
        "--data-root",
        data_root,
        "--set",
        "data.split=test",
        "--set",
        "train.batch_size=16",
        "--max-steps",
        "3",
    )
    assert code == 0, output
    assert load_checkpoint(run).state["step"] == 3
    assert sorted(path.name for path in run.glob("checkpoint*")) == ["checkpoint"]
