"""Train one experiment in several backends in lockstep, and judge the difference against the
float32 rounding floor measured in the same run.

The trainings start from the same spec, seed, weights, batches, noise, labels and dropout
masks: PyTorch float32 (the reference), Jittor float32, and the floor's references, each an
equally valid rounding of the same math: PyTorch float64; PyTorch float32 from the initial
weights rounded the other way (each float64 draw to the float32 on its other side, 1 ulp from
the reference's); on CPU, PyTorch float32 at another intra-op thread count (another summation
order) and PyTorch float32 on the instruction set one level below (another kernel set, in a
child process: gx.parity.isa). GAN training amplifies rounding, so even PyTorch float32 drifts
away from each of them; that drift is the floor.

The verdict rule: for each threshold T in 1e-4, 1e-3, 1e-2, let f(T) be the first step at which
the loss difference max(|dD|, |dG|) between PyTorch float32 and any floor reference exceeds T
(N + 1 if none does in N steps), and c(T) the same for PyTorch against Jittor. A seed is
within when, for every T,

    c(T) >= f(T) - max(MARGIN_STEPS, ceil(MARGIN_FRACTION * f(T)))

and parity holds when most seeds are within (the experiment's own seed and the next ones, 3 by
default: 2 of 3). Each seed's crossings are compared with its own floor's; medians taken apart
over the seeds would pair one seed's crossing with another's floor (dcgan under an AVX2 cap:
seeds within 2 of 3, medians 4 against 7 at 1e-2).

The two backends stay together about as long as two roundings of PyTorch itself do. One
reference and one seed are not enough, because a first crossing is one draw of a chaotic
process. Training passes points where float32 rounding decides a branch: a LeakyReLU input
within rounding of zero takes the other slope, and Adam's first updates, which move each weight
by about +-lr whatever the gradient's size, turn the changed gradient into a step-sized
difference. Each float32 implementation flips its own few branches (dcgan's first batch: one
LeakyReLU input of 2.9 million in PyTorch, another in Jittor, both within 1e-6 of zero), so which
pair parts first, and by how much, is a lottery the CPU's kernels draw (docs/parity.md).
The earliest crossing over several references, and the verdict of most seeds, keep one draw
from deciding. The margin is proportional for the same reason: a change that made Jittor's batch
norm more exact moved cdcgan's 1e-3 crossing from 21 to 17 against a floor of 21, with the
typical difference over the run unchanged. Stock Jittor failed the rule against its first
floor (9/16/33 against 12/22/36, docs/parity-measurements.md); Jittor's own Adam
fails it on every seed against today's (tests/test_parity.py).

In bf16 or fp16 (``train.precision``, gx.precision) every run computes in that precision, the
floor's references included: each is an equally valid computation of gx's low-precision rule
(float64 instead of float32 between the rounded layers, other initial roundings, another
summation order, other kernels), so the floor is the low precision's own. PyTorch in float32
trains beside them as the far reference ("float32"): how far the low precision itself takes
the training. It is reported, never part of the floor. In low precision the losses of two
valid roundings already differ by 1e-5 to 1e-4 from the first step, and float32's only a few
times more (docs/parity.md), so the training alone would hardly tell a backend that ignored the
precision; the verdict also asks that both backends' step-0 outputs of every layer the rule
rounds be values of the format (gx.parity.layers), which such a backend fails at once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gx.backends import get_backend
from gx.backends.base import Backend
from gx.checkpoint import Checkpoint
from gx.config import Experiment, model_for
from gx.data import batches, resolve_data_root
from gx.errors import GxError
from gx.losses import label_classes
from gx.machine import describe_machine
from gx.parity.isa import (
    CHILD_GRACE_FACTOR,
    CHILD_GRACE_SECONDS,
    ChildFailed,
    ChildTraining,
    lower_isa_environment,
)
from gx.parity.layers import LayerDiff, compare_layers
from gx.precision import FLOAT32
from gx.train.data import training_data
from gx.train.gan import GanTrainer, NonFiniteLoss

THRESHOLDS = (1e-4, 1e-3, 1e-2)
MARGIN_STEPS = 2
MARGIN_FRACTION = 0.2
# Seeds per verdict: three is the fewest in which one unlucky seed cannot decide alone.
DEFAULT_SEEDS = 3
# The floor's reference whose initial weights are rounded the other way (gx.spec.init).
ROUNDINGS = {"torch_rounded": "other"}
# In bf16 and fp16: PyTorch float32, the far reference (reported, not part of the floor).
FAR_REFERENCE = "float32"


@dataclass
class SeedRun:
    """One lockstep training from one seed: every run's losses and the per-step differences."""

    seed: int
    steps: int
    losses: dict[str, dict[str, list[float | None]]]  # run -> "d"/"g" -> per step
    cross: list[float]  # per step max(|dD|, |dG|), torch vs jittor
    # per step, torch float32 vs each floor reference, and the largest of them: the floor
    floors: dict[str, list[float]]
    floor: list[float]
    stopped_early: str = ""
    # bf16 and fp16: per step, torch in that precision vs torch float32 (empty in float32)
    far: list[float] = field(default_factory=list)

    @property
    def within(self) -> bool:
        return not self.stopped_early and within_floor(self.cross, self.floor)

    def summary(self) -> str:
        """ "seed 0: 2 / 2 / 4 vs 2 / 3 / 7 (OUTSIDE)": first steps over each threshold."""

        def steps(differences: list[float]) -> str:
            return " / ".join(str(step) for step in crossings(differences).values())

        outcome = "within" if self.within else "OUTSIDE"
        if self.stopped_early:
            outcome += f", stopped: {self.stopped_early}"
        far = f"; float32 parts at {steps(self.far)}" if self.far else ""
        return f"seed {self.seed}: {steps(self.cross)} vs {steps(self.floor)} ({outcome}){far}"


@dataclass
class ParityResult:
    experiment: str
    devices: dict[str, dict[str, Any]]
    layers: list[LayerDiff]
    seeds: list[SeedRun]  # the experiment's own seed first
    machine: dict[str, Any] = field(default_factory=dict)
    precision: str = FLOAT32  # every run's but the far reference's (gx.precision)

    @property
    def steps(self) -> int:
        return min(run.steps for run in self.seeds)

    # The experiment's own seed, for callers that look at one training.
    @property
    def losses(self) -> dict[str, dict[str, list[float | None]]]:
        return self.seeds[0].losses

    @property
    def cross(self) -> list[float]:
        return self.seeds[0].cross

    @property
    def stopped_early(self) -> str:
        return "; ".join(
            f"seed {run.seed}: {run.stopped_early}" for run in self.seeds if run.stopped_early
        )

    @property
    def seeds_within(self) -> int:
        return sum(run.within for run in self.seeds)

    @property
    def unfollowed(self) -> list[str]:
        """'backend: network.layer' for each layer whose step-0 outputs are not values of the
        precision's format where gx's rule rounds them (gx.precision; empty in float32)."""
        return [
            f"{backend}: {row.network}.{row.layer}"
            for row in self.layers
            for backend, followed in row.formats.items()
            if not followed
        ]

    @property
    def within(self) -> bool:
        """Most seeds within, no run stopped on a non-finite loss, and in bf16 or fp16 both
        backends rounding where the rule says."""
        return (
            not self.stopped_early
            and not self.unfollowed
            and majority_within([(run.cross, run.floor) for run in self.seeds])
        )

    def verdict_line(self) -> str:
        outcome = (
            f"WITHIN the {self.precision} rounding floor" if self.within else "OUTSIDE the floor"
        )
        if self.unfollowed:
            outcome += (
                f" (not computed in {self.precision} as gx's rule says, outputs that are not "
                f"{self.precision} values: {', '.join(self.unfollowed)})"
            )
        thresholds = " / ".join(f"{t:g}" for t in THRESHOLDS)
        return (
            f"{self.experiment}: {outcome} over {self.steps} steps on {self.seeds_within} of "
            f"{len(self.seeds)} seeds (first step over {thresholds}, torch vs jittor against "
            f"the floor: {'; '.join(run.summary() for run in self.seeds)}; margin "
            f"max({MARGIN_STEPS} steps, {MARGIN_FRACTION:.0%} of the floor's))"
        )


class ParityIncomplete(GxError):
    """A floor reference failed; ``result`` holds the figures of every run that finished."""

    def __init__(self, message: str, result: ParityResult) -> None:
        super().__init__(message)
        self.result = result


def first_over(differences: list[float], threshold: float) -> int:
    """1-based step at which the difference first exceeds ``threshold``; len + 1 if never."""
    for index, value in enumerate(differences):
        if not value <= threshold:  # NaN counts as over
            return index + 1
    return len(differences) + 1


def earliest_allowed(floor_first: int) -> int:
    """The earliest first crossing the cross-backend difference may have, given the floor's."""
    return floor_first - max(MARGIN_STEPS, math.ceil(MARGIN_FRACTION * floor_first))


def crossings(differences: list[float]) -> dict[str, int]:
    """The first step over each threshold, keyed as parity.json keys them ("0.0001", ...)."""
    return {f"{threshold:g}": first_over(differences, threshold) for threshold in THRESHOLDS}


def within_floor(cross: list[float], floor: list[float]) -> bool:
    """The verdict rule (see the module docstring) over one seed's per-step loss differences."""
    first_cross, first_floor = crossings(cross), crossings(floor)
    return all(first_cross[key] >= earliest_allowed(first_floor[key]) for key in first_cross)


def majority_within(pairs: list[tuple[list[float], list[float]]]) -> bool:
    """Parity over several seeds, (cross, floor) curves per seed: within on most of them."""
    return 2 * sum(within_floor(cross, floor) for cross, floor in pairs) > len(pairs)


def widest(differences: list[float]) -> float:
    """The floor at one step: the largest difference to any reference, NaN if any is NaN (a
    failed reference counts as crossed, as in first_over). Its first crossing of a threshold is
    the earliest crossing over the references."""
    return max(differences, key=lambda value: (math.isnan(value), value))


def other_thread_count(threads: int) -> int:
    """The floor's second float32 reference: one thread against several, several against one."""
    return 2 if threads == 1 else 1


def _loss_difference(a: dict[str, list], b: dict[str, list], step: int) -> float:
    worst = 0.0
    for key in ("d", "g"):
        x, y = a[key][step], b[key][step]
        if x is not None and y is not None:
            worst = max(worst, abs(x - y)) if np.isfinite(x - y) else float("nan")
    return worst


def loss_differences(a: dict[str, list], b: dict[str, list], steps: int) -> list[float]:
    """Per step max(|dD|, |dG|) of two trainings' losses ("d"/"g" -> per step), NaN where either
    is not finite."""
    return [_loss_difference(a, b, step) for step in range(steps)]


def far_difference(losses: dict[str, dict[str, list[float | None]]], steps: int) -> list[float]:
    """Per step, PyTorch in the low precision against PyTorch float32 (empty in float32)."""
    if FAR_REFERENCE not in losses:
        return []
    return loss_differences(losses["torch"], losses[FAR_REFERENCE], steps)


def floor_differences(
    losses: dict[str, dict[str, list[float | None]]], steps: int
) -> tuple[dict[str, list[float]], list[float]]:
    """PyTorch float32 ("torch") against each floor reference ("torch_..." runs) per step, and
    the floor: the widest of them at each step."""
    floors = {
        name: loss_differences(losses["torch"], curve, steps)
        for name, curve in losses.items()
        if name.startswith("torch_")
    }
    return floors, [widest([curve[step] for curve in floors.values()]) for step in range(steps)]


@dataclass
class LockstepTraining:
    losses: dict[str, dict[str, list[float | None]]]  # run -> "d"/"g" -> per step
    steps: int  # steps every run completed
    stopped_early: str = ""


def train_in_lockstep(
    experiment: Experiment,
    runs: dict[str, Backend],
    threads: dict[str, int],
    steps: int,
    data_root: str | None,
    roundings: Mapping[str, str] | None = None,
    start: Checkpoint | None = None,
) -> LockstepTraining:
    """Train ``experiment`` in every run, step by step, on the same batches, up to step
    ``steps``; ``threads`` sets PyTorch's process-wide CPU thread count before each step of the
    runs it names, and ``roundings`` the initial weights' rounding of the runs it names
    (gx.spec.init). With ``start``, every run continues that checkpoint, whichever backend wrote
    it, as ``gx run --resume`` does; the losses are then those of the steps after it. Each run
    computes in its backend's precision."""
    model = model_for(experiment)
    data = experiment.data
    root = resolve_data_root(data.dataset, data_root, data.root)
    images, labels = training_data(data, root, model, label_classes(experiment, model))
    roundings = roundings or {}
    trainers = {
        name: GanTrainer(backend, model, experiment, rounding=roundings.get(name, "nearest"))
        for name, backend in runs.items()
    }
    on_device = {
        name: (backend.tensor(images), backend.tensor(labels)) for name, backend in runs.items()
    }
    first = 0
    if start is not None:
        for trainer in trainers.values():
            trainer.restore(start, "the checkpoint to continue")
        first = start.state["step"]
    training = LockstepTraining({name: {"d": [], "g": []} for name in runs}, 0)
    seed, batch_size = experiment.seed, experiment.train.batch_size
    for step_batch in batches(len(images), batch_size, seed, first, steps):
        for trainer in trainers.values():
            trainer.set_rates(step_batch.step, step_batch.epoch, steps)
        indices = step_batch.indices
        try:
            for name, trainer in trainers.items():
                backend, (data_images, data_labels) = runs[name], on_device[name]
                if name in threads:
                    backend.set_cpu_threads(threads[name])
                outcome = trainer.step(
                    backend.take(data_images, indices),
                    backend.take(data_labels, indices) if trainer.label_classes else None,
                )
                training.losses[name]["d"].append(outcome.d_loss)
                training.losses[name]["g"].append(outcome.g_loss)
        except NonFiniteLoss as error:
            training.stopped_early = f"{name}: {error}"
            break
        training.steps += 1
    return training


def lockstep_runs(
    device: str, continuation: bool = False, precision: str = FLOAT32
) -> tuple[dict[str, Backend], dict[str, int]]:
    """The runs of a lockstep training, in strict math: PyTorch ("torch") and Jittor ("jittor")
    in ``precision``, the floor's references made in this process ("torch_...", in
    ``precision`` too) and, in bf16 or fp16, the far reference (PyTorch float32); and the CPU
    thread count of each PyTorch run, which is process-wide: train_in_lockstep sets it before
    each of their steps. A ``continuation`` of a checkpoint has no "torch_rounded": its only
    difference, the rounding of the initial weights, is replaced by the checkpoint's weights."""
    runs: dict[str, Backend] = {
        "torch": get_backend("torch", device, precision=precision),
        "jittor": get_backend("jittor", device, precision=precision),
        "torch_float64": get_backend("torch", device, "float64", precision),
    }
    if not continuation:
        runs["torch_rounded"] = get_backend("torch", device, precision=precision)
    if precision != FLOAT32:
        runs[FAR_REFERENCE] = get_backend("torch", device)
    reference = runs["torch"]
    threads = {
        name: reference.describe()["threads"]
        for name, backend in runs.items()
        if backend.name == "torch"
    }
    if reference.device == "cpu":
        runs["torch_threads"] = get_backend("torch", device, precision=precision)
        threads["torch_threads"] = other_thread_count(threads["torch"])
    for backend in runs.values():
        backend.strict_math()
    return runs, threads


def _start_isa_reference(
    experiment: Experiment, reference: Backend, threads: int, steps: int, data_root: str
) -> ChildTraining | None:
    """The floor's reference on a lower instruction set, started in a child process (on CPUs
    that have a lower level to cap to)."""
    environment = lower_isa_environment(reference.describe()["cpu_capability"] or "")
    if reference.device != "cpu" or environment is None:
        return None
    request = {
        "experiment": experiment.to_dict(),
        "steps": steps,
        "threads": threads,
        "data_root": data_root,
    }
    return ChildTraining(request, environment)


def _train_one_seed(
    experiment: Experiment, runs: dict[str, Backend], threads: dict[str, int], steps: int, root: str
) -> tuple[SeedRun, dict[str, Any] | None, str]:
    """One seed's lockstep training, the lower-instruction-set reference's device (as the
    child process reports it; None where there is none) and why that child failed ("" if not)."""
    # started first, so that it trains while this process trains the others
    child = _start_isa_reference(experiment, runs["torch"], threads["torch"], steps, root)
    started = time.monotonic()
    training = train_in_lockstep(experiment, runs, threads, steps, root, ROUNDINGS)
    own_seconds = time.monotonic() - started
    losses = training.losses
    completed, stopped_early = training.steps, training.stopped_early
    child_device, child_error = None, ""
    if child is not None:
        try:
            answer = child.answer(max(CHILD_GRACE_SECONDS, CHILD_GRACE_FACTOR * own_seconds))
        except ChildFailed as error:
            child_error = str(error)
        else:
            losses["torch_isa"], child_device = answer["losses"], answer["device"]
            if answer["steps"] < completed:
                completed, stopped_early = answer["steps"], f"torch_isa: {answer['stopped_early']}"
    if completed == 0:
        raise GxError(
            f"parity of '{experiment.name}' (seed {experiment.seed}) stopped before "
            f"its first step: {stopped_early}"
        )
    floors, floor = floor_differences(losses, completed)
    return (
        SeedRun(
            experiment.seed,
            completed,
            losses,
            cross=loss_differences(losses["torch"], losses["jittor"], completed),
            floors=floors,
            floor=floor,
            stopped_early=stopped_early,
            far=far_difference(losses, completed),
        ),
        child_device,
        child_error,
    )


def continuation_parity(
    experiment: Experiment,
    checkpoint: Checkpoint,
    steps: int,
    device: str = "cpu",
    data_root: str | None = None,
) -> SeedRun:
    """Both backends continue ``checkpoint`` (written by either) up to step ``steps`` in lockstep,
    as ``gx run --resume`` on each would, beside the floor's references continuing it too; one
    SeedRun over the steps after the checkpoint, judged by the same rule as gx parity."""
    runs, threads = lockstep_runs(device, True, experiment.train.precision)
    try:
        training = train_in_lockstep(experiment, runs, threads, steps, data_root, start=checkpoint)
    finally:  # the thread count is process-wide: leave PyTorch's own for whatever runs next
        runs["torch"].set_cpu_threads(threads["torch"])
    floors, floor = floor_differences(training.losses, training.steps)
    return SeedRun(
        experiment.seed,
        training.steps,
        training.losses,
        cross=loss_differences(training.losses["torch"], training.losses["jittor"], training.steps),
        floors=floors,
        floor=floor,
        stopped_early=training.stopped_early,
        far=far_difference(training.losses, training.steps),
    )


def run_parity(
    experiment: Experiment,
    steps: int,
    device: str = "cpu",
    data_root: str | None = None,
    seeds: int = DEFAULT_SEEDS,
) -> ParityResult:
    """Lockstep trainings from ``seeds`` seeds (the experiment's own, then the next ones), each
    with every floor reference, each judged by the rule; parity holds on most of them."""
    model = model_for(experiment)
    precision = experiment.train.precision
    runs, threads = lockstep_runs(device, precision=precision)
    reference, other = runs["torch"], runs["jittor"]
    float64 = runs["torch_float64"]
    layers = [
        *compare_layers([reference, other], "generator", model.generator, experiment.seed, float64),
        *compare_layers(
            [reference, other], "discriminator", model.discriminator, experiment.seed, float64
        ),
    ]
    data = experiment.data
    root = str(resolve_data_root(data.dataset, data_root, data.root))
    seed_runs: list[SeedRun] = []
    child_device: dict[str, Any] | None = None
    for offset in range(seeds):
        seeded = dataclasses.replace(experiment, seed=experiment.seed + offset)
        run, seed_device, child_error = _train_one_seed(seeded, runs, threads, steps, root)
        seed_runs.append(run)
        child_device = child_device or seed_device
        if run.stopped_early or child_error:  # either decides: no need for more seeds
            break
    devices = {
        name: {**backend.describe(), **({"threads": threads[name]} if name in threads else {})}
        for name, backend in runs.items()
    }
    if child_device is not None:
        devices["torch_isa"] = child_device
    # after training: Jittor's kernels are loaded, so this shows the mode every run computed in
    result = ParityResult(
        experiment.name, devices, layers, seed_runs, describe_machine(), precision
    )
    if child_error:
        raise ParityIncomplete(child_error, result)
    return result
