"""Test helpers for projects that train with gx: parity as one assertion in their own CI.

from gx.testing import assert_parity

def test_my_gan_trains_the_same_on_both_backends():
    assert_parity("experiments/my_gan.yaml", steps=12, overrides=["data.split=test"])
"""

from __future__ import annotations

from collections.abc import Sequence

from gx.parity.check import ExperimentSource, ParityCheck, SeedCrossings, check_parity
from gx.parity.lockstep import DEFAULT_SEEDS


def _steps(values: dict[str, int]) -> str:
    return " / ".join(str(step) for step in values.values())


def seed_line(seed: SeedCrossings) -> str:
    """One seed against its floor, e.g. "seed 0: torch vs jittor over 0.0001 / 0.001 / 0.01 at
    steps 3 / 9 / 13 (never: steps + 1); floor 4 / 10 / 13, allowed from 2 / 8 / 11: within"."""
    thresholds = " / ".join(seed.cross)
    outcome = "within" if seed.within else "OUTSIDE"
    if seed.stopped_early:
        outcome += f", stopped: {seed.stopped_early}"
    return (
        f"seed {seed.seed}: torch vs jittor over {thresholds} at steps {_steps(seed.cross)}; "
        f"floor {_steps(seed.floor)}, allowed from {_steps(seed.allowed)}: {outcome}"
    )


def assert_parity(
    experiment: ExperimentSource,
    steps: int = 60,
    seeds: int = DEFAULT_SEEDS,
    device: str = "cpu",
    data_root: str | None = None,
    overrides: Sequence[str] = (),
) -> ParityCheck:
    """Fail unless both backends train ``experiment`` within the float32 rounding floor (the
    arguments are ``gx.check_parity``'s); the failure shows every seed's crossings against its
    floor. Returns the check for further assertions."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    check = check_parity(experiment, steps, seeds, device, data_root, overrides)
    if not check.within:
        lines = [check.verdict, *(seed_line(seed) for seed in check.seeds)]
        raise AssertionError("\n".join(lines))
    return check
