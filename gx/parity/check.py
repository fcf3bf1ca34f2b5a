"""``gx parity`` from Python, for a project's own CI: the verdict and every seed's crossings.

check = gx.check_parity("experiments/my_gan.yaml", steps=12, seeds=3,
                        overrides=["data.split=test"])
assert check.within, check.verdict
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from gx.config import Experiment, load_experiment
from gx.parity.lockstep import (
    DEFAULT_SEEDS,
    ParityResult,
    SeedRun,
    crossings,
    earliest_allowed,
    run_parity,
)
from gx.parity.report import shapes_agree


@dataclass(frozen=True)
class SeedCrossings:
    """One seed's lockstep training, judged: for each threshold ("0.0001", "0.001", "0.01"),
    the first step at which the loss difference exceeds it (steps + 1: never)."""

    seed: int
    """The experiment's seed for this training."""
    cross: dict[str, int]
    """Threshold -> first step PyTorch and Jittor differ by more."""
    floor: dict[str, int]
    """Threshold -> first step PyTorch differs by more from any of its own float32 roundings."""
    allowed: dict[str, int]
    """Threshold -> the earliest step ``cross`` may reach it and the seed still be within."""
    within: bool
    """Whether ``cross`` reaches no threshold before ``allowed``."""
    stopped_early: str
    """Why the training stopped before its steps ("" if it did not)."""

    @classmethod
    def of(cls, run: SeedRun) -> SeedCrossings:
        """The crossings of one seed's lockstep run."""
        floor = crossings(run.floor)
        return cls(
            run.seed,
            crossings(run.cross),
            floor,
            {key: earliest_allowed(step) for key, step in floor.items()},
            run.within,
            run.stopped_early,
        )


@dataclass(frozen=True)
class ParityCheck:
    """What ``check_parity`` returns: ``gx parity``'s verdict and the figures behind it."""

    within: bool
    """``gx parity``'s exit status 0: most seeds within, and every layer's shape agrees."""
    verdict: str
    """The verdict line ``gx parity`` prints."""
    seeds: list[SeedCrossings]
    """Every seed's crossings, the experiment's own seed first."""
    result: ParityResult
    """Every figure of the report: losses per run, layer differences."""


ExperimentSource = Union[Experiment, str, Path]


def check_parity(
    experiment: ExperimentSource,
    steps: int = 60,
    seeds: int = DEFAULT_SEEDS,
    device: str = "cpu",
    data_root: str | None = None,
    overrides: Sequence[str] = (),
) -> ParityCheck:
    """``gx parity EXPERIMENT --steps STEPS --seeds SEEDS``: an experiment object, or a file
    with ``--set`` style ``overrides``."""
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, overrides)
    result = run_parity(experiment, steps, device, data_root, seeds)
    return ParityCheck(
        result.within and shapes_agree(result),
        result.verdict_line(),
        [SeedCrossings.of(run) for run in result.seeds],
        result,
    )
