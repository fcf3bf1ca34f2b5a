"""Train one experiment in several backends in lockstep, and judge the difference against the
float32 rounding floor measured in the same run.

The trainings start from the same spec, seed, weights, batches, noise, labels and dropout
masks: PyTorch float32 (the reference), Jittor float32, and the floor's references, each an
equally valid rounding of the same math: PyTorch float64, and on CPU PyTorch float32 with
another intra-op thread count (another summation order). GAN training amplifies rounding, so
even PyTorch float32 drifts away from each of them; that drift is the floor.

The verdict rule: for each threshold T in 1e-4, 1e-3, 1e-2, let f(T) be the first step at which
the loss difference max(|dD|, |dG|) between PyTorch float32 and any floor reference exceeds T
(N + 1 if none does in N steps), and c(T) the same for PyTorch against Jittor. Parity holds when,
for every T,

    c(T) >= f(T) - max(MARGIN_STEPS, ceil(MARGIN_FRACTION * f(T)))

The two backends stay together about as long as two roundings of PyTorch itself do. One
reference is not enough: training passes points where rounding decides which way a trajectory
goes (cgan, step ~21: gradients that are rounding noise meet Adam's normalisation), and which
float32 implementations land on which side depends on the CPU's kernels. On an AVX-512 Xeon
PyTorch float32 stayed with float64 past cgan's step 21 and Jittor did not; on an AVX-512 EPYC
it was the other way round, with the same magnitudes (docs/parity-rule.md). The earliest
crossing of several references does not hinge on that one draw. The margin is proportional
because a first crossing is still one sample of a chaotic process: a change that made Jittor's
batch norm more exact moved cdcgan's 1e-3 crossing from 21 to 17 against a floor of 21, with
the typical difference over the run unchanged (geometric mean 2.5e-3 against 2.4e-3). Stock
Jittor (9/16/33 against 12/22/36 in ../shared/reference/jittor-vs-torch.md) fails the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gx.backends import get_backend
from gx.backends.base import Backend
from gx.config import Experiment
from gx.data import batch_indices, load_dataset, resolve_data_root, steps_per_epoch
from gx.errors import GxError
from gx.parity.layers import LayerDiff, compare_layers
from gx.parity.machine import describe_machine
from gx.train.gan import GanTrainer, NonFiniteLoss
from gx.train.run import model_for

THRESHOLDS = (1e-4, 1e-3, 1e-2)
MARGIN_STEPS = 2
MARGIN_FRACTION = 0.2


@dataclass
class ParityResult:
    experiment: str
    steps: int
    devices: dict[str, dict[str, Any]]
    layers: list[LayerDiff]
    losses: dict[str, dict[str, list[float | None]]]  # run -> "d"/"g" -> per step
    cross: list[float] = field(default_factory=list)  # per step max(|dD|, |dG|), torch vs jittor
    # per step, torch float32 vs each floor reference, and the largest of them: the floor
    floors: dict[str, list[float]] = field(default_factory=dict)
    floor: list[float] = field(default_factory=list)
    first_cross: dict[str, int] = field(default_factory=dict)
    first_floor: dict[str, int] = field(default_factory=dict)  # the earliest over the references
    machine: dict[str, Any] = field(default_factory=dict)
    within: bool = False
    stopped_early: str = ""

    def verdict_line(self) -> str:
        parts = [f"{t:g}: jittor {self.first_cross[f'{t:g}']} vs floor {self.first_floor[f'{t:g}']}"
                 for t in THRESHOLDS]
        outcome = "WITHIN the float32 rounding floor" if self.within else "OUTSIDE the floor"
        return (f"{self.experiment}: {outcome} over {self.steps} steps (first step over "
                f"{'; '.join(parts)}; margin max({MARGIN_STEPS} steps, "
                f"{MARGIN_FRACTION:.0%} of the floor's))")


def first_over(differences: list[float], threshold: float) -> int:
    """1-based step at which the difference first exceeds ``threshold``; len + 1 if never."""
    for index, value in enumerate(differences):
        if not value <= threshold:  # NaN counts as over
            return index + 1
    return len(differences) + 1


def earliest_allowed(floor_first: int) -> int:
    """The earliest first crossing the cross-backend difference may have, given the floor's."""
    return floor_first - max(MARGIN_STEPS, math.ceil(MARGIN_FRACTION * floor_first))


def within_floor(cross: list[float], floor: list[float]) -> bool:
    """The verdict rule (see the module docstring) over per-step loss differences."""
    return all(first_over(cross, threshold) >= earliest_allowed(first_over(floor, threshold))
               for threshold in THRESHOLDS)


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


def run_parity(experiment: Experiment, steps: int, device: str = "cpu",
               data_root: str | None = None) -> ParityResult:
    model = model_for(experiment)
    runs: dict[str, Backend] = {
        "torch": get_backend("torch", device),
        "jittor": get_backend("jittor", device),
        "torch_float64": get_backend("torch", device, "float64"),
    }
    reference, other = runs["torch"], runs["jittor"]
    # PyTorch's CPU thread count is process-wide: set before each step of each PyTorch run
    threads = {"torch": reference.describe()["threads"]}
    threads["torch_float64"] = threads["torch"]
    if reference.device == "cpu":
        runs["torch_threads"] = get_backend("torch", device)
        threads["torch_threads"] = other_thread_count(threads["torch"])
    references = [name for name in runs if name.startswith("torch_")]
    for backend in runs.values():
        backend.strict_math()
    layers = (compare_layers([reference, other], "generator", model.generator, experiment.seed)
              + compare_layers([reference, other], "discriminator", model.discriminator,
                               experiment.seed))

    data = experiment.data
    root = resolve_data_root(data.dataset, data_root, data.root)
    images, labels = load_dataset(data.dataset, root, data.split, data.image_size, data.download)
    batch = experiment.train.batch_size
    per_epoch = steps_per_epoch(len(images), batch)
    trainers = {name: GanTrainer(backend, model, experiment) for name, backend in runs.items()}
    on_device = {name: (backend.tensor(images), backend.tensor(labels))
                 for name, backend in runs.items()}
    losses: dict[str, dict[str, list[float | None]]] = {name: {"d": [], "g": []} for name in runs}
    devices = {name: {**backend.describe(), **({"threads": threads[name]} if name in threads
                                               else {})}
               for name, backend in runs.items()}
    result = ParityResult(experiment.name, 0, devices, layers, losses,
                          floors={name: [] for name in references})
    order = None
    for step in range(steps):
        epoch, position = divmod(step, per_epoch)
        if order is None or position == 0:
            order = batch_indices(len(images), batch, experiment.seed, epoch)
            for trainer in trainers.values():
                trainer.set_epoch(epoch)
        try:
            for name, trainer in trainers.items():
                backend, (data_images, data_labels) = runs[name], on_device[name]
                if name in threads:
                    backend.set_cpu_threads(threads[name])
                outcome = trainer.step(backend.take(data_images, order[position]),
                                       backend.take(data_labels, order[position])
                                       if model.conditional else None)
                losses[name]["d"].append(outcome.d_loss)
                losses[name]["g"].append(outcome.g_loss)
        except NonFiniteLoss as error:
            result.stopped_early = f"{name}: {error}"
            break
        result.steps = step + 1
        result.cross.append(_loss_difference(losses["torch"], losses["jittor"], step))
        for name in references:
            result.floors[name].append(_loss_difference(losses["torch"], losses[name], step))
        result.floor.append(widest([result.floors[name][-1] for name in references]))
    if result.steps == 0:
        raise GxError(f"parity of '{experiment.name}' stopped before its first step: "
                      f"{result.stopped_early}")
    for threshold in THRESHOLDS:
        key = f"{threshold:g}"
        result.first_cross[key] = first_over(result.cross, threshold)
        result.first_floor[key] = first_over(result.floor, threshold)
    result.within = not result.stopped_early and within_floor(result.cross, result.floor)
    # after training: Jittor's kernels are loaded, so this shows the mode every run computed in
    result.machine = describe_machine()
    return result
