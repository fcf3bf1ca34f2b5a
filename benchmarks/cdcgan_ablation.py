"""cdcgan ablation: how each change to the seed recipe moves "read as requested", step by step.

Each variant is experiments/cdcgan.yaml with ``--set`` overrides. It trains with gx's own
``run_experiment`` up to each checkpoint step (resuming the same run folder, which gx makes
bit-identical to an uninterrupted run) and runs ``gx eval`` there: agreement (the share of
generated digits the evaluation classifier reads as the requested class), Fréchet distance in
the classifier's features and diversity.

    python benchmarks/cdcgan_ablation.py --backend torch --threads 1
    python benchmarks/cdcgan_ablation.py --variants seed,+bn --steps 250,500 --n 2000

The variants are the rows of the ablation tables (docs/recipes.md, docs/training-features.md):
the seed network under the common recipe (Adam 2e-4, betas (0.5, 0.999), batch 64), the
discriminator changes, the changes tried on top of them, the flagship before its projection term
and weight average, the flagship (experiments/cdcgan.yaml as it is), and the training features
tried on top of it. A variant whose decay ends with the run (``+decay``, ``+hinge+decay``,
``+hinge+decay400``) must be measured at one step only: each checkpoint step is a run of that
length. The last line printed is one JSON object with every figure (also written to
WORK/ablation-BACKEND.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The flagship before its time-to-quality changes (docs/training-features.md).
BEFORE_PROJECTION = ["model.options.d_projection=false", "train.ema_decay=null"]
# The seed network (models.md) under the common recipe: what the flagship changes, undone.
SEED = BEFORE_PROJECTION + [
    "model.options.d_batch_norm=false",
    "model.options.leaky_slope=0.01",
    "model.options.g_bn_eps=0.00001",
    "optimizer.generator.lr=0.0002",
    "optimizer.discriminator.lr=0.0002",
]
HINGE = ["model.options.d_output=logit", "train.loss=hinge"]
BN_SLOPE = SEED + ["model.options.d_batch_norm=true", "model.options.leaky_slope=0.2"]
VARIANTS: dict[str, list[str]] = {
    "seed": SEED,
    "+slope": SEED + ["model.options.leaky_slope=0.2"],
    "+bn+slope": BN_SLOPE,
    "+bn+slope+real0.9": BN_SLOPE + ["train.real_label=0.9"],
    "+bn+slope+dropout": BN_SLOPE + ["model.options.d_dropout=0.3"],
    "+bn+slope+wide": BN_SLOPE + ["model.options.d_width=256"],
    "+bn+slope+mse": BN_SLOPE + ["train.loss=mse"],
    "+bn+slope+ttur": BN_SLOPE
    + ["optimizer.generator.lr=0.0001", "optimizer.discriminator.lr=0.0004"],
    "+bn+slope+eps0.2": BN_SLOPE + ["model.options.g_bn_eps=0.2"],
    "+bn+slope+eps0.8": BN_SLOPE + ["model.options.g_bn_eps=0.8"],
    "+bn+slope+eps0.5": BN_SLOPE + ["model.options.g_bn_eps=0.5"],
    "before-projection": BEFORE_PROJECTION,
    "flagship": [],
    "+hinge": HINGE,
    "+hinge+class_loss": HINGE + ["model.options.d_classifier=true", "train.class_loss=1.0"],
    "+decay": ["optimizer.schedule.decay=linear"],
    "+decay2500": ["optimizer.schedule.decay=linear", "optimizer.schedule.decay_steps=2500"],
    "+latedecay": [
        "optimizer.schedule.decay=linear",
        "optimizer.schedule.decay_start=1700",
        "optimizer.schedule.decay_steps=2500",
    ],
    "+ema0.998from1000": ["train.ema_decay=0.998", "train.ema_start=1000"],
    "+hinge+decay": HINGE + ["optimizer.schedule.decay=linear"],
    "+hinge+decay400": HINGE
    + ["optimizer.schedule.decay=linear", "optimizer.schedule.decay_start=400"],
}


def parse_variants(text: str) -> dict[str, list[str]]:
    """'seed,+bn' picks defaults; 'name=key=value;key=value' defines a variant on the fly."""
    chosen: dict[str, list[str]] = {}
    for item in filter(None, text.split(",")):
        name, equals, overrides = item.partition("=")
        if equals:
            chosen[name] = [part for part in overrides.split(";") if part]
        elif name in VARIANTS:
            chosen[name] = VARIANTS[name]
        else:
            raise SystemExit(
                f"unknown variant '{name}'; known: {', '.join(VARIANTS)} "
                "(or define one as name=key=value;key=value)"
            )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="torch", choices=["torch", "jittor"])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--steps", default="500,1000,1500", help="checkpoint steps at which gx eval runs"
    )
    parser.add_argument("--n", type=int, default=2000, help="images for gx eval")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (OMP_NUM_THREADS and torch's); default: the framework's",
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--split", default="test", choices=["train", "test", "both"])
    parser.add_argument("--work", default="runs/ablation", help="run folders go here")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        help="an override applied to every variant",
    )
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from gx.config import load_experiment
    from gx.evaluate import evaluate_run
    from gx.train.run import RunOptions, run_experiment

    if args.threads and args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)

    steps = sorted(int(step) for step in args.steps.split(","))
    rows: list[dict[str, Any]] = []
    for name, overrides in parse_variants(args.variants).items():
        folder = Path(args.work) / f"{name}-{args.backend}"
        train_seconds = 0.0
        for step in steps:
            experiment = load_experiment(
                REPO / "experiments" / "cdcgan.yaml",
                [
                    f"data.split={args.split}",
                    "train.epochs=1000",
                    f"train.max_steps={step}",
                    *overrides,
                    *args.extra,
                ],
            )
            began = time.perf_counter()
            result = run_experiment(
                experiment,
                RunOptions(
                    backend=args.backend,
                    data_root=args.data_root,
                    out=str(folder),
                    resume=str(folder) if (folder / "checkpoint").is_dir() else None,
                    progress=False,
                ),
            )
            train_seconds += time.perf_counter() - began
            if result.stopped != "finished":
                print(f"{name} @ {step}: {result.stopped}", flush=True)
                break
            figures = evaluate_run(folder, args.n, args.backend, seed=0, data_root=args.data_root)
            rows.append(
                {
                    "variant": name,
                    "backend": args.backend,
                    "step": step,
                    "overrides": overrides,
                    "train_seconds": round(train_seconds, 1),
                    "agreement": figures["agreement"],
                    "frechet_distance": figures["frechet_distance"],
                    "diversity": figures["diversity"],
                }
            )
            print(
                f"{name:<12} {args.backend:<6} step {step:>6}: agreement "
                f"{100 * figures['agreement']:6.2f}%  FD {figures['frechet_distance']:8.2f}  "
                f"diversity {figures['diversity']:.3f}  ({train_seconds:.0f} s)",
                flush=True,
            )
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / f"ablation-{args.backend}.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
