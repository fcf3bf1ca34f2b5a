"""train.tensorboard: event files in the run folder, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import REPO_ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tiny import gx_subprocess, write_tiny_experiment

SCALARS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr_g", "lr_d", "images_per_s")


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, data_root) -> Path:
    """A run on a Jittor-only install (torch cannot be imported), as the extra must serve it."""
    folder = tmp_path_factory.mktemp("tensorboard")
    run = folder / "run"
    result = gx_subprocess(
        [
            "run",
            write_tiny_experiment(folder),
            "--device",
            "cpu",
            "--data-root",
            data_root,
            "--out",
            run,
            "--max-steps",
            "4",
            "--set",
            "train.sample_every=2",
            "--set",
            "train.tensorboard=true",
        ],
        folder,
        ["torch"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["backend"]["backend"] == "jittor"
    return run


def read_events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.jittor  # the logged run trains on Jittor
@pytest.mark.slow
def test_scalars_are_the_metrics_of_every_step(logged_run):
    events = read_events(logged_run)
    records = [json.loads(line) for line in (logged_run / "metrics.jsonl").read_text().splitlines()]
    assert sorted(events.Tags()["scalars"]) == sorted(f"train/{key}" for key in SCALARS)
    for key in SCALARS:
        logged = events.Scalars(f"train/{key}")
        assert [event.step for event in logged] == [1, 2, 3, 4]
        # TensorBoard stores float32
        np.testing.assert_array_equal(
            [event.value for event in logged], np.float32([record[key] for record in records])
        )


@pytest.mark.jittor  # the logged run trains on Jittor
def test_sample_grids_at_sample_every(logged_run):
    events = read_events(logged_run)
    assert events.Tags()["images"] == ["samples"]
    logged = events.Images("samples")
    assert [event.step for event in logged] == [2, 4]
    for event in logged:
        with Image.open(logged_run / "samples" / f"step-{event.step:06d}.png") as saved:
            assert (event.width, event.height) == saved.size == (302, 302)


@pytest.mark.jittor  # the logged run trains on Jittor
def test_experiment_is_logged_as_hyperparameters(logged_run):
    events = read_events(logged_run)
    contents = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(
        contents["_hparams_/session_start_info"]
    ).session_start_info
    hparams = session.hparams
    assert hparams["name"].string_value == "tiny"
    assert hparams["model.name"].string_value == "custom"
    assert hparams["train.batch_size"].number_value == 8
    assert hparams["train.max_steps"].number_value == 4
    assert hparams["train.tensorboard"].bool_value is True
    assert hparams["optimizer.generator.lr"].number_value == pytest.approx(2e-4)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        contents["_hparams_/experiment"]
    ).experiment
    assert [metric.name.tag for metric in experiment.metric_infos] == [
        "train/d_loss",
        "train/g_loss",
    ]


def test_missing_extra_is_one_message_before_any_file(tmp_path, data_root):
    run = tmp_path / "run"
    result = gx_subprocess(
        [
            "run",
            write_tiny_experiment(tmp_path),
            "--backend",
            "torch",
            "--data-root",
            data_root,
            "--out",
            run,
            "--set",
            "train.tensorboard=true",
        ],
        tmp_path,
        ["tensorboardX"],
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: train.tensorboard is true but tensorboardX is not installed; install it with: "
        "pip install 'gx[tensorboard]'   (or: pip install tensorboardX), or set "
        "train.tensorboard=false"
    ]
    assert not run.exists()


def test_writer_does_not_load_torch(tmp_path):
    """A Jittor run with TensorBoard logs must not import PyTorch through tensorboardX."""
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from gx.train.tensorboard import TensorBoardLog
        log = TensorBoardLog({str(tmp_path)!r})
        log.write_step({{"step": 1, "d_loss": 0.5}})
        log.write_samples(1, np.zeros((4, 4), np.uint8))
        log.close()
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "torch")))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert read_events(tmp_path).Scalars("train/d_loss")[0].value == 0.5
