"""gx's compiled networks against the same networks hand-written in the native framework.

Both train in the same process on the same batches: one tensor of synthetic images on the device,
and random index gathers from it (``backend.take``) for both, so only the training step differs.
They alternate, ``--rounds`` rounds of ``--steps`` steps each (the order flips every round, so a
machine that slows down or speeds up hurts both alike), and each side's median seconds per step is
reported with the ratio gx / hand-written (1.00 = as fast; above 1, gx is slower).

    python benchmarks/compare.py                                # all models, torch and jittor, CPU
    python benchmarks/compare.py --models cdcgan --backends torch --rounds 5 --steps 20
    python benchmarks/compare.py --models gan --backends torch --profile   # where gx's time goes

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gx.backends import BACKENDS, get_backend
from gx.backends.base import Backend
from gx.config import load_experiment, model_for
from gx.data import batch_indices
from gx.tools.bench import SYNTHETIC_ROWS, synthetic_data
from gx.train.gan import GanTrainer

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
MODELS = ("cdcgan", "dcgan", "cgan", "gan")

Step = Callable[[Any, Any], Any]


def endless_batches(rows: int, batch: int, seed: int) -> Iterator[np.ndarray]:
    epoch = 0
    while True:
        yield from batch_indices(rows, batch, seed, epoch)
        epoch += 1


def compare_model(backend: Backend, name: str, args: argparse.Namespace) -> dict[str, Any]:
    experiment = load_experiment(EXPERIMENTS / f"{name}.yaml")
    model = model_for(experiment)
    batch = args.batch or experiment.train.batch_size
    rows = max(SYNTHETIC_ROWS, batch)
    images, labels = synthetic_data(model, rows, experiment.seed)
    data_images = backend.tensor(images)
    data_labels = backend.tensor(labels) if model.conditional else None
    order = endless_batches(rows, batch, experiment.seed)

    handwritten = importlib.import_module(f"handwritten_{backend.name}")
    steps: dict[str, Step] = {
        "gx": GanTrainer(backend, model, experiment).step,
        "handwritten": handwritten.build(name, backend.device).step,
    }

    def run(step: Step, count: int) -> float:
        """Seconds per step over ``count`` steps, device work included."""
        backend.synchronize()
        began = time.perf_counter()
        for _ in range(count):
            indices = next(order)
            step(
                backend.take(data_images, indices),
                backend.take(data_labels, indices) if data_labels is not None else None,
            )
        backend.synchronize()
        return (time.perf_counter() - began) / count

    for step in steps.values():  # warm-up: allocator, oneDNN primitives, Jittor kernels
        run(step, args.warmup)
    seconds: dict[str, list[float]] = {"gx": [], "handwritten": []}
    for round_index in range(args.rounds):
        for side in ("gx", "handwritten") if round_index % 2 == 0 else ("handwritten", "gx"):
            seconds[side].append(run(steps[side], args.steps))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, steps["gx"], args.steps)
        print(f"\n-- cProfile of {args.steps} gx steps: {name} on {backend.name} --")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)

    gx_ms = 1000 * statistics.median(seconds["gx"])
    hand_ms = 1000 * statistics.median(seconds["handwritten"])
    # The fastest round is the least disturbed by other processes: a second view on a busy machine.
    best_ratio = min(seconds["gx"]) / min(seconds["handwritten"])
    return {
        "model": name,
        "backend": backend.name,
        "device": backend.device,
        "batch": batch,
        "gx_step_ms": gx_ms,
        "handwritten_step_ms": hand_ms,
        "ratio": gx_ms / hand_ms,
        "ratio_of_fastest_rounds": best_ratio,
        "gx_rounds_ms": [1000 * s for s in seconds["gx"]],
        "handwritten_rounds_ms": [1000 * s for s in seconds["handwritten"]],
    }


def framework_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Jittor step time / torch step time, per model measured on both (gx and hand-written)."""
    by_key = {(r["model"], r["backend"]): r for r in results}
    ratios = []
    for name in MODELS:
        torch_result, jittor_result = by_key.get((name, "torch")), by_key.get((name, "jittor"))
        if torch_result and jittor_result:
            ratios.append(
                {
                    "model": name,
                    "gx_jittor_over_torch": jittor_result["gx_step_ms"]
                    / torch_result["gx_step_ms"],
                    "handwritten_jittor_over_torch": (
                        jittor_result["handwritten_step_ms"] / torch_result["handwritten_step_ms"]
                    ),
                }
            )
    return ratios


def table(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    lines = [
        f"{'model':<8} {'backend':<8} {'batch':>5} {'gx ms/step':>11} "
        f"{'hand ms/step':>13} {'gx/hand':>8} {'best/best':>9}"
    ]
    for r in results:
        lines.append(
            f"{r['model']:<8} {r['backend']:<8} {r['batch']:>5} {r['gx_step_ms']:>11.1f} "
            f"{r['handwritten_step_ms']:>13.1f} {r['ratio']:>8.3f} "
            f"{r['ratio_of_fastest_rounds']:>9.3f}"
        )
    if ratios:
        lines.append("")
        lines.append(f"{'model':<8} {'jittor/torch (gx)':>18} {'jittor/torch (hand)':>20}")
        for r in ratios:
            lines.append(
                f"{r['model']:<8} {r['gx_jittor_over_torch']:>18.3f} "
                f"{r['handwritten_jittor_over_torch']:>20.3f}"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size (default: each experiment's own)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per side first")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for both frameworks (OMP_NUM_THREADS; default: theirs). "
        "On a busy machine 1 thread gives steadier figures",
    )
    parser.add_argument(
        "--profile", action="store_true", help="after timing, print a cProfile of gx's steps"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        # read by torch's and Jittor's OpenMP (and oneDNN) when they are first imported, below
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    results = []
    for backend_name in args.backends:
        backend = get_backend(backend_name, args.device)
        for name in args.models:
            results.append(compare_model(backend, name, args))
            print(
                f"{name} on {backend_name}: gx {results[-1]['gx_step_ms']:.1f} ms, "
                f"hand-written {results[-1]['handwritten_step_ms']:.1f} ms per step",
                flush=True,
            )
    ratios = framework_ratios(results)
    print()
    print(table(results, ratios))
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "steps": args.steps,
                "results": results,
                "jittor_over_torch": ratios,
                "backends": {
                    name: get_backend(name, args.device).describe() for name in args.backends
                },
            }
        )
    )


if __name__ == "__main__":
    main()
