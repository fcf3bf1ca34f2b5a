"""gx.run_folder: a run folder's files, named once, and its config read with the experiment's
own defaults."""

from __future__ import annotations

from pathlib import Path

import yaml
from tiny import tiny_settings

from gx.config import DataConfig
from gx.run_folder import RunFolder


def test_a_run_folder_names_its_files(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    assert run.config == tmp_path / "run" / "config.yaml"
    assert run.checkpoint == tmp_path / "run" / "checkpoint"
    assert run.sample_grid(12) == tmp_path / "run" / "samples" / "step-000012.png"
    assert run.rank_log(1) == tmp_path / "run" / "logs" / "rank-1.log"
    run.samples.mkdir(parents=True)
    run.logs.mkdir()
    for name in ("step-000010.png", "step-000002.png", "notes.png"):
        (run.samples / name).touch()
    for name in ("rank-10.log", "rank-2.log", "launcher.log"):
        (run.logs / name).touch()
    assert run.sample_grids() == {2: run.sample_grid(2), 10: run.sample_grid(10)}
    assert run.rank_logs() == [run.rank_log(2), run.rank_log(10)]


def test_its_data_settings_fill_in_the_experiment_s_defaults(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    assert run.data_settings() == DataConfig()  # no config.yaml: the defaults alone
    settings = tiny_settings()
    settings["data"] = {"root": "/data/digits"}  # an older config: split, size unsaid
    run.config.write_text(yaml.safe_dump(settings))
    data = run.data_settings()
    assert (data.dataset, data.root, data.split) == ("mnist", "/data/digits", "train")
