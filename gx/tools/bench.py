"""``gx bench``: how fast an experiment trains and generates on one backend.

Training is timed as ``gx run`` does it: one ``GanTrainer.step`` (D and G updates) per batch, the
dataset held on the device and each batch gathered with ``backend.take``. The data are synthetic
(uniform images in [-1, 1] and random labels, drawn in numpy), so no dataset is needed, but the
on-device gather path is the same. Generation is the generator's forward pass in eval mode without
gradients (``GanTrainer.sample``), from noise to images on the host.

Every figure is taken after warm-up steps (on Jittor they also cover kernel compilation), with
``backend.synchronize()`` around each timed step, so queued device work is counted where it ran.

The step's GFLOP/s is also given as a share of the machine's matrix-product ceiling
(gx.tools.ceiling) on the same threads: float32's always, and in bf16 or fp16 that format's too
(``--precision``). Where the low precision runs emulated (gx.precision), the step computes on
float32 kernels, so float32's ceiling is the one that bounds it.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

import numpy as np

from gx.backends import default_backend, get_backend
from gx.backends.base import Backend
from gx.config import Experiment, model_for
from gx.data import batches
from gx.errors import GxError
from gx.models import GanModel
from gx.precision import FLOAT32
from gx.spec.flops import step_flops
from gx.tools.ceiling import matrix_product_ceiling
from gx.train.gan import GanTrainer

# Rows of synthetic data held on the device; batches are random gathers from them, as in a run.
SYNTHETIC_ROWS = 1024

# The keys of the JSON line (documented in ``gx bench --help`` and benchmarks/README.md).
RESULT_KEYS = (
    "experiment",
    "model",
    "backend",
    "device",
    "precision",
    "low_precision_kernels",
    "batch",
    "steps",
    "warmup",
    "compile",
    "warmup_s",
    "train_images_per_s",
    "train_step_ms_median",
    "step_gflop",
    "train_gflop_per_s",
    "float32_ceiling_gflop_per_s",
    "float32_ceiling_share",
    "low_precision_ceiling_gflop_per_s",
    "low_precision_ceiling_share",
    "generate_images_per_s",
    "generate_batch_ms_median",
    "peak_host_rss_mb",
    "peak_device_mb",
    "onednn",
    "backend_info",
)


@dataclass(frozen=True)
class BenchOptions:
    backend: str | None = None  # None: torch when installed, else jittor
    device: str = "auto"
    batch: int | None = None  # None: the experiment's train.batch_size
    steps: int = 20
    warmup: int = 3
    compile: bool = False  # torch.compile the generator and discriminator (torch only)
    precision: str | None = None  # None: the experiment's train.precision


def synthetic_data(model: GanModel, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform float32 images in [-1, 1] shaped like the model's, and int64 labels."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, (rows, *model.image_shape)).astype(np.float32)
    labels = rng.integers(0, max(model.classes, 1), rows)
    return images, labels


# -- the few framework calls bench needs beyond the backend interface ------------------------------
# Only torch has a device peak counter; Jittor keeps none unless its memory profiler is switched
# on (which slows every operation), so its device peak is reported as null.


def _torch_reset_peak() -> None:
    import torch

    torch.cuda.reset_peak_memory_stats()


def _torch_peak_bytes() -> int:
    import torch

    return torch.cuda.max_memory_allocated()


def _torch_compile(trainer: GanTrainer) -> None:
    import torch

    # The compiled wrappers share the modules' parameters, so the optimizers built on the
    # originals keep updating what the compiled code reads.
    trainer.generator = torch.compile(trainer.generator)
    trainer.discriminator = torch.compile(trainer.discriminator)


_DEVICE_PEAK: dict[str, tuple[Callable[[], None], Callable[[], int]]] = {
    "torch": (_torch_reset_peak, _torch_peak_bytes),
}
_COMPILERS: dict[str, Callable[[GanTrainer], None]] = {"torch": _torch_compile}


def _reset_device_peak(backend: Backend) -> None:
    if backend.device == "cuda" and backend.name in _DEVICE_PEAK:
        _DEVICE_PEAK[backend.name][0]()


def _device_peak_mb(backend: Backend) -> float | None:
    if backend.device != "cuda" or backend.name not in _DEVICE_PEAK:
        return None
    return _DEVICE_PEAK[backend.name][1]() / 2**20


def _host_peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


# -- timing ---------------------------------------------------------------------------------------


def _timed(backend: Backend, action: Callable[[], Any]) -> float:
    """Seconds ``action`` takes, with the device's queued work drained before and after."""
    backend.synchronize()
    began = time.perf_counter()
    action()
    backend.synchronize()
    return time.perf_counter() - began


def _check(options: BenchOptions) -> None:
    if options.steps < 1:
        raise GxError(f"--steps must be at least 1, got {options.steps}")
    if options.warmup < 0:
        raise GxError(f"--warmup must be 0 or more, got {options.warmup}")
    if options.batch is not None and options.batch < 1:
        raise GxError(f"--batch must be at least 1, got {options.batch}")
    if options.compile and options.backend not in _COMPILERS:
        raise GxError(
            f"--compile is only offered for --backend "
            f"{', '.join(_COMPILERS)}; {options.backend} compiles its kernels itself"
        )


def run_bench(experiment: Experiment, options: BenchOptions) -> dict[str, Any]:
    """Train and generate on synthetic data; every figure as plain data (keys: RESULT_KEYS)."""
    options = replace(options, backend=options.backend or default_backend())
    _check(options)
    model = model_for(experiment)
    batch = options.batch or experiment.train.batch_size
    precision = options.precision or experiment.train.precision
    backend = get_backend(options.backend, options.device, precision=precision)
    trainer = GanTrainer(backend, model, experiment)
    if options.compile:
        _COMPILERS[backend.name](trainer)

    rows = max(SYNTHETIC_ROWS, batch)
    images_np, labels_np = synthetic_data(model, rows, experiment.seed)
    data_images = backend.tensor(images_np)
    data_labels = backend.tensor(labels_np) if trainer.label_classes else None

    order = batches(rows, batch, experiment.seed)

    def train_step() -> None:
        indices = next(order).indices
        labels = backend.take(data_labels, indices) if data_labels is not None else None
        trainer.step(backend.take(data_images, indices), labels)

    noise = [trainer.draw_inputs(batch) for _ in range(options.warmup + options.steps)]

    _reset_device_peak(backend)
    warmup_s = sum(_timed(backend, train_step) for _ in range(options.warmup))
    step_seconds = [_timed(backend, train_step) for _ in range(options.steps)]
    warmup_s += sum(
        _timed(backend, partial(trainer.sample, inputs)) for inputs in noise[: options.warmup]
    )
    generate_seconds = [
        _timed(backend, partial(trainer.sample, inputs)) for inputs in noise[options.warmup :]
    ]

    described = backend.describe()
    train = experiment.train
    flops = step_flops(model.generator, model.discriminator, batch, train.order, train.d_steps)
    step_gflop = flops.per_step / 1e9
    train_gflop_per_s = step_gflop * len(step_seconds) / sum(step_seconds)
    threads = described.get("threads") or _openmp_threads()
    ceilings = {
        name: matrix_product_ceiling(backend.device, name, threads) for name in {FLOAT32, precision}
    }
    low_ceiling = ceilings[precision] if precision != FLOAT32 else None
    return {
        "experiment": experiment.name,
        "model": model.name,
        "backend": backend.name,
        "device": backend.device,
        "precision": precision,
        "low_precision_kernels": described.get("low_precision_kernels"),
        "batch": batch,
        "steps": options.steps,
        "warmup": options.warmup,
        "compile": options.compile,
        "warmup_s": warmup_s,
        "train_images_per_s": batch * len(step_seconds) / sum(step_seconds),
        "train_step_ms_median": 1000 * statistics.median(step_seconds),
        "step_gflop": step_gflop,
        "train_gflop_per_s": train_gflop_per_s,
        "float32_ceiling_gflop_per_s": ceilings[FLOAT32],
        "float32_ceiling_share": _share(train_gflop_per_s, ceilings[FLOAT32]),
        "low_precision_ceiling_gflop_per_s": low_ceiling,
        "low_precision_ceiling_share": _share(train_gflop_per_s, low_ceiling),
        "generate_images_per_s": batch * len(generate_seconds) / sum(generate_seconds),
        "generate_batch_ms_median": 1000 * statistics.median(generate_seconds),
        "peak_host_rss_mb": _host_peak_rss_mb(),
        "peak_device_mb": _device_peak_mb(backend),
        "onednn": described.get("onednn"),
        "backend_info": described,
    }


def _openmp_threads() -> int:
    """The CPU threads of a backend that does not report its own (Jittor: OpenMP's default)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def _share(gflop_per_s: float, ceiling: float | None) -> float | None:
    return None if ceiling is None else gflop_per_s / ceiling


def format_report(result: dict[str, Any]) -> str:
    """The human-readable table ``gx bench`` prints above its JSON line."""

    def figure(value: float | None, unit: str) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:,.1f} {unit}"

    def share(key: str) -> str:
        value = result[f"{key}_share"]
        ceiling = figure(result[f"{key}_gflop_per_s"], "GFLOP/s")
        return "n/a (no PyTorch)" if value is None else f"{value:.1%} of {ceiling}"

    mode = " (torch.compile)" if result["compile"] else ""
    precision = result["precision"]
    if result["low_precision_kernels"] is not None:
        precision += f" ({result['low_precision_kernels']} kernels)"
    onednn = {True: "yes", False: "no", None: "n/a"}[result["onednn"]]
    rows = [
        ("experiment", f"{result['experiment']} (model {result['model']})"),
        ("backend", f"{result['backend']} on {result['device']}{mode}"),
        ("precision", precision),
        ("batch / steps / warm-up", f"{result['batch']} / {result['steps']} / {result['warmup']}"),
        ("warm-up time", figure(result["warmup_s"], "s")),
        (
            "train",
            f"{figure(result['train_images_per_s'], 'images/s')}   "
            f"(median step {figure(result['train_step_ms_median'], 'ms')})",
        ),
        (
            "arithmetic",
            f"{figure(result['step_gflop'], 'GFLOP')} a step, "
            f"{figure(result['train_gflop_per_s'], 'GFLOP/s')}",
        ),
        ("float32 ceiling share", share("float32_ceiling")),
        *(
            [(f"{result['precision']} ceiling share", share("low_precision_ceiling"))]
            if result["low_precision_ceiling_share"] is not None
            else []
        ),
        (
            "generate",
            f"{figure(result['generate_images_per_s'], 'images/s')}   "
            f"(median batch {figure(result['generate_batch_ms_median'], 'ms')})",
        ),
        ("peak host RSS", figure(result["peak_host_rss_mb"], "MiB")),
        ("peak device memory", figure(result["peak_device_mb"], "MiB")),
        ("Jittor oneDNN", onednn),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
