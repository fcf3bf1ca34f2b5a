"""How much of this CPU's float32 arithmetic a gx training step uses, per model and backend.

The ceiling is gx bench's (gx.tools.ceiling): a 2048 x 2048 float32 matrix product through
PyTorch on the same threads (the fastest of ``--repeats``, 2 x 2048^3 FLOPs each), about as close
to the CPU's peak as float32 code gets. Each model's figure is ``gx bench``'s: the step's
matrix-product and convolution FLOPs, counted from the spec (gx.spec.flops, the same count for
both backends), over the timed steps.

    python benchmarks/utilization.py --threads 1
    python benchmarks/utilization.py --models cdcgan --backends torch --steps 10

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("cdcgan", "dcgan", "cgan", "gan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default="torch,jittor")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from gx.config import load_experiment
    from gx.tools.bench import BenchOptions, run_bench
    from gx.tools.ceiling import SIZE, matrix_product_ceiling

    torch.set_num_threads(args.threads)
    ceiling = matrix_product_ceiling("cpu", "float32", args.threads, args.repeats)
    assert ceiling is not None  # PyTorch is imported above
    print(f"float32 {SIZE}x{SIZE} matrix product, {args.threads} thread(s): {ceiling:.1f} GFLOP/s")
    rows = []
    for backend in args.backends.split(","):
        for name in args.models.split(","):
            experiment = load_experiment(REPO / "experiments" / f"{name}.yaml")
            figures = run_bench(
                experiment, BenchOptions(backend, "cpu", steps=args.steps, warmup=args.warmup)
            )
            row = {
                "model": name,
                "backend": backend,
                "batch": figures["batch"],
                "step_gflop": figures["step_gflop"],
                "step_ms": figures["train_step_ms_median"],
                "gflop_per_s": figures["train_gflop_per_s"],
                "utilization": figures["train_gflop_per_s"] / ceiling,
            }
            rows.append(row)
            print(
                f"{name:<7} {backend:<7} batch {row['batch']:>4}  {row['step_gflop']:7.2f} GFLOP"
                f"  {row['step_ms']:8.1f} ms  {row['gflop_per_s']:6.1f} GFLOP/s"
                f"  {100 * row['utilization']:5.1f}% of the ceiling",
                flush=True,
            )
    print(json.dumps({"threads": args.threads, "ceiling_gflop_per_s": ceiling, "rows": rows}))


if __name__ == "__main__":
    main()
