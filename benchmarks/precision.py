"""train.precision's speed: gx's float32 and bf16 (or fp16) training steps side by side, and the
frameworks' own low-precision kernels against their float32 ones.

Per backend and model, one float32 trainer and one low-precision trainer are built in one
process on the same synthetic batches (as gx bench: one tensor of images on the device, random
index gathers) and alternate ``--rounds`` rounds of ``--steps`` steps, the order flipping every
round, so that a machine that slows down or speeds up hurts both alike. The table gives each
one's median ms per step, the ratio low / float32 (above 1: the low precision is slower), each
step's share of the machine's matrix-product ceilings (gx.tools.ceiling), and how the backend
computes the low precision (native or emulated, gx.precision).

``--kernels`` first times single operations of cdcgan's sizes in each framework's own dtype
(a transposed convolution, a convolution, a 1024 x 1024 matrix product): what gx would get from
the frameworks' bf16 kernels on this machine.

    python benchmarks/precision.py --threads 1
    python benchmarks/precision.py --models cdcgan --backends torch --rounds 7 --kernels

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gx.backends import BACKENDS, get_backend
from gx.config import load_experiment, model_for
from gx.data import batch_indices
from gx.spec.flops import step_flops
from gx.tools.bench import SYNTHETIC_ROWS, synthetic_data
from gx.tools.ceiling import matrix_product_ceiling
from gx.train.gan import GanTrainer

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
MODELS = ("cdcgan", "dcgan", "cgan", "gan")


def endless_batches(rows: int, batch: int, seed: int) -> Iterator[np.ndarray]:
    epoch = 0
    while True:
        yield from batch_indices(rows, batch, seed, epoch)
        epoch += 1


def compare_precisions(backend_name: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    experiment = load_experiment(EXPERIMENTS / f"{name}.yaml")
    model = model_for(experiment)
    batch = experiment.train.batch_size
    backends = {
        precision: get_backend(backend_name, args.device, precision=precision)
        for precision in ("float32", args.precision)
    }
    rows = max(SYNTHETIC_ROWS, batch)
    images, labels = synthetic_data(model, rows, experiment.seed)
    order = endless_batches(rows, batch, experiment.seed)
    sides: dict[str, Callable[[int], float]] = {}
    for precision, backend in backends.items():
        trainer = GanTrainer(backend, model, experiment)
        data = backend.tensor(images), backend.tensor(labels) if model.conditional else None

        def run(count: int, backend: Any = backend, trainer: Any = trainer, data: Any = data):
            """Seconds per step over ``count`` steps, device work included."""
            backend.synchronize()
            began = time.perf_counter()
            for _ in range(count):
                indices = next(order)
                trainer.step(
                    backend.take(data[0], indices),
                    backend.take(data[1], indices) if data[1] is not None else None,
                )
            backend.synchronize()
            return (time.perf_counter() - began) / count

        sides[precision] = run
    for run in sides.values():  # warm-up: allocator, oneDNN primitives, Jittor kernels
        run(args.warmup)
    seconds: dict[str, list[float]] = {precision: [] for precision in sides}
    order_of_sides = list(sides)
    for round_index in range(args.rounds):
        for precision in order_of_sides if round_index % 2 == 0 else order_of_sides[::-1]:
            seconds[precision].append(sides[precision](args.steps))

    train = experiment.train
    gflop = step_flops(model.generator, model.discriminator, batch, train.order, train.d_steps)
    step_gflop = gflop.per_step / 1e9
    figures: dict[str, Any] = {
        "model": name,
        "backend": backend_name,
        "batch": batch,
        "step_gflop": step_gflop,
        "kernels": backends[args.precision].describe()["low_precision_kernels"],
    }
    for precision, values in seconds.items():
        median = statistics.median(values)
        figures[f"{precision}_step_ms"] = 1000 * median
        figures[f"{precision}_rounds_ms"] = [1000 * value for value in values]
        figures[f"{precision}_gflop_per_s"] = step_gflop / median
    figures["ratio"] = figures[f"{args.precision}_step_ms"] / figures["float32_step_ms"]
    return figures


def best_of(repeats: int, action: Callable[[], Any], synchronize: Callable[[], Any]) -> float:
    action()  # warm-up (and Jittor's kernel compilation)
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        began = time.perf_counter()
        action()
        synchronize()
        best = min(best, time.perf_counter() - began)
    return 1000 * best


def kernel_times(backend_name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """ms of cdcgan-sized single operations in float32 and in the framework's own low dtype."""
    rng = np.random.default_rng(0)
    shapes = {
        "conv_transpose2d (64, 256, 7, 7) -> (64, 128, 14, 14)": (
            (64, 256, 7, 7),
            (256, 128, 4, 4),
        ),
        "conv2d (64, 128, 14, 14) -> (64, 256, 7, 7)": ((64, 128, 14, 14), (256, 128, 4, 4)),
        "matmul 1024 x 1024": ((1024, 1024), (1024, 1024)),
    }
    arrays = {
        label: tuple(rng.standard_normal(shape).astype(np.float32) for shape in pair)
        for label, pair in shapes.items()
    }
    rows = []
    if backend_name == "torch":
        import torch
        import torch.nn.functional as F

        low_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
        operations = [F.conv_transpose2d, F.conv2d, torch.mm]
        sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
        for (label, (x, w)), operation in zip(arrays.items(), operations):
            keywords = {} if operation is torch.mm else {"stride": 2, "padding": 1}
            times = {}
            for dtype_name, dtype in (("float32", torch.float32), (args.precision, low_dtype)):
                a = torch.from_numpy(x).to(args.device, dtype)
                b = torch.from_numpy(w).to(args.device, dtype)
                times[dtype_name] = best_of(
                    args.repeats, functools.partial(operation, a, b, **keywords), sync
                )
            rows.append({"backend": "torch", "operation": label, **times})
    else:
        get_backend("jittor", args.device)  # prepares Jittor's environment before its import
        import jittor as jt

        # Jittor is lazy: each operation is synced, or it would never run
        operations = [
            lambda a, b: jt.nn.conv_transpose2d(a, b, None, 2, 1).sync(),
            lambda a, b: jt.nn.conv2d(a, b, None, 2, 1).sync(),
            lambda a, b: jt.matmul(a, b).sync(),
        ]
        for (label, (x, w)), operation in zip(arrays.items(), operations):
            times = {}
            for dtype_name in ("float32", args.precision):
                cast = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype_name]
                a, b = (getattr(jt.array(value), cast)() for value in (x, w))
                times[dtype_name] = best_of(
                    args.repeats, functools.partial(operation, a, b), jt.sync_all
                )
            rows.append({"backend": "jittor", "operation": label, **times})
    return rows


def table(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    low = args.precision
    lines = [
        f"{'model':<7} {'backend':<7} {'kernels':<9} {'float32 ms':>11} {low + ' ms':>10} "
        f"{low + '/f32':>9}  {'f32 share':>9} {low + ' shares':>18}"
    ]
    for r in results:
        lines.append(
            f"{r['model']:<7} {r['backend']:<7} {r['kernels']:<9} {r['float32_step_ms']:>11.1f} "
            f"{r[f'{low}_step_ms']:>10.1f} {r['ratio']:>9.3f}  "
            f"{r['float32_share']:>9.1%} {r[f'{low}_share_of_float32_ceiling']:>8.1%} / "
            f"{r[f'{low}_share_of_{low}_ceiling']:>7.1%}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["cdcgan", "cgan"])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--precision", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (OMP_NUM_THREADS)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per kernel and ceiling")
    parser.add_argument("--kernels", action="store_true", help="also time single operations")
    args = parser.parse_args()
    # read by torch's and Jittor's OpenMP (and oneDNN) when they are first imported, below
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    ceilings = {
        precision: matrix_product_ceiling(args.device, precision, args.threads, args.repeats)
        for precision in ("float32", args.precision)
    }
    print(
        f"matrix-product ceilings, {args.threads} thread(s): "
        + ", ".join(f"{name} {value:.1f} GFLOP/s" for name, value in ceilings.items() if value),
        flush=True,
    )
    kernels = []
    if args.kernels:
        for backend_name in args.backends:
            kernels += kernel_times(backend_name, args)
        for row in kernels:
            print(
                f"{row['backend']:<7} {row['operation']:<55} float32 {row['float32']:9.1f} ms"
                f"  {args.precision} {row[args.precision]:9.1f} ms",
                flush=True,
            )
    results = []
    for backend_name in args.backends:
        for name in args.models:
            figures = compare_precisions(backend_name, name, args)
            figures["float32_share"] = figures["float32_gflop_per_s"] / ceilings["float32"]
            for ceiling in ("float32", args.precision):
                figures[f"{args.precision}_share_of_{ceiling}_ceiling"] = (
                    figures[f"{args.precision}_gflop_per_s"] / ceilings[ceiling]
                )
            results.append(figures)
            print(
                f"{name} on {backend_name}: float32 {figures['float32_step_ms']:.1f} ms, "
                f"{args.precision} {figures[f'{args.precision}_step_ms']:.1f} ms per step",
                flush=True,
            )
    print()
    print(table(args, results))
    print(
        json.dumps(
            {
                "precision": args.precision,
                "threads": args.threads,
                "ceilings_gflop_per_s": ceilings,
                "kernels_ms": kernels,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
