"""A run folder: what ``gx run`` writes where, read back the same way by every command.

::

    config.yaml       the resolved experiment
    run.json          the command, the backend, when it started, and the run's segments
    metrics.jsonl     one JSON line per step
    samples/          step-NNNNNN.png: sample grids from fixed noise
    samples.gif       the grids in order
    losses.png        the losses against the step
    summary.json      how the run ended
    eval.json         gx eval's figures
    checkpoint/       the last checkpoint (gx.checkpoint: safetensors files and state.json, which
                      holds the SHA-256 of each)
    logs/             with --nproc: rank-R.log, each process's output, and launcher.log

``segments``: which framework trained which steps. ``sampler``: a run's generator, compiled in
any backend, as generate, strip, eval and export draw from it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gx.checkpoint import FOLDER as CHECKPOINT_FOLDER
from gx.checkpoint import Checkpoint, find_checkpoint, load_checkpoint
from gx.config import DataConfig, experiment_from_dict
from gx.errors import GxError
from gx.run_folder.segments import Segment, recorded_segments

_GRID = re.compile(r"step-(\d+)\.png")
_RANK_LOG = re.compile(r"rank-(\d+)\.log")


class RunFolder:
    """The paths of one run folder, each named once."""

    LOGS = "logs"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, path: str | Path) -> RunFolder:
        """The run folder of a run folder or of the checkpoint folder inside it."""
        checkpoint = find_checkpoint(path)
        if checkpoint.name == CHECKPOINT_FOLDER and (checkpoint.parent / "config.yaml").is_file():
            return cls(checkpoint.parent)
        return cls(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def record(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_grid(self, step: int) -> Path:
        return self.samples / f"step-{step:06d}.png"

    def sample_grids(self) -> dict[int, Path]:
        """The sample grids written, by step, in step order."""
        found = {}
        for path in self.samples.glob("step-*.png"):
            match = _GRID.fullmatch(path.name)
            if match:
                found[int(match[1])] = path
        return dict(sorted(found.items()))

    @property
    def animation(self) -> Path:
        return self.path / "samples.gif"

    @property
    def losses(self) -> Path:
        return self.path / "losses.png"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def evaluation(self) -> Path:
        return self.path / "eval.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FOLDER

    @property
    def logs(self) -> Path:
        return self.path / self.LOGS

    def rank_log(self, rank: int) -> Path:
        return self.logs / f"rank-{rank}.log"

    def rank_logs(self) -> list[Path]:
        """The processes' logs there are, rank 0's first."""
        found = [(int(match[1]), path) for path in self.logs.glob("rank-*.log")
                 if (match := _RANK_LOG.fullmatch(path.name))]  # fmt: skip
        return [path for _, path in sorted(found)]

    @property
    def launcher_log(self) -> Path:
        return self.logs / "launcher.log"

    def data_settings(self) -> DataConfig:
        """The data section of the run's config.yaml, read with the experiment's own defaults
        for what it does not say (a folder without one: the defaults alone)."""
        if not self.config.is_file():
            return DataConfig()
        try:
            saved = yaml.safe_load(self.config.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise GxError(
                f"{self.config} cannot be read ({error}); restore it from a copy of the run folder"
            ) from None
        return experiment_from_dict(saved, str(self.config)).data

    def segments(self, checkpoint: Checkpoint | None = None) -> list[Segment]:
        """Which backend trained which steps, as its checkpoint records them (``checkpoint``:
        that checkpoint, when it is loaded already)."""
        state = (checkpoint or load_checkpoint(self.path)).state
        return recorded_segments(state, f"the checkpoint of '{self.path}'")
