"""Learning rates over a run: milestone factors per epoch and a per-step warm-up and decay.

The rate of step s (0-based) of epoch e is ``base * milestones(e) * schedule(s)``:

- milestones: the product of every milestone factor whose epoch has been reached;
- warm-up: ``(s + 1) / warmup_steps`` while s < warmup_steps, so the first step already moves;
- decay, from ``decay_start`` (or the end of the warm-up, whichever is later; until then the
  factor is 1) to ``decay_steps`` (default: the run's last step): linear or half a cosine from 1
  down to ``final_factor``, which then holds.

Everything is computed in Python floats, once per step, and handed to both backends' optimizers
as the same number.
"""

from __future__ import annotations

import math

from gx.config import Experiment, Schedule


def milestone_factor(experiment: Experiment, epoch: int) -> float:
    factor = 1.0
    for milestone in experiment.optimizer.milestones:
        if epoch >= milestone.epoch:
            factor *= milestone.factor
    return factor


def schedule_factor(schedule: Schedule, step: int, total: int) -> float:
    """The factor for 0-based ``step`` of a run of ``total`` steps."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    start = max(schedule.warmup_steps, schedule.decay_start)
    if schedule.decay == "none" or step < start:
        return 1.0
    end = schedule.decay_steps or total
    progress = 1.0 if end <= start else min(1.0, (step - start) / (end - start))
    remaining = (
        1.0 - progress if schedule.decay == "linear" else (1 + math.cos(math.pi * progress)) / 2
    )
    return schedule.final_factor + (1.0 - schedule.final_factor) * remaining


def learning_rate(base: float, experiment: Experiment, step: int, epoch: int, total: int) -> float:
    """The rate for 0-based ``step`` of 0-based ``epoch`` in a run of ``total`` steps."""
    schedule = schedule_factor(experiment.optimizer.schedule, step, total)
    return base * milestone_factor(experiment, epoch) * schedule
