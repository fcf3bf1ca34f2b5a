"""A run continued on the other framework, judged against float32's rounding floor.

For each experiment and each backend that writes the checkpoint: ``gx run`` trains K steps on
that backend, then both backends continue its checkpoint in lockstep beside the floor's
references (PyTorch float64 and PyTorch at another CPU thread count, from the same checkpoint),
as ``gx run --resume RUN --backend B`` continues it, and gx parity's rule judges the difference
(gx.parity.lockstep.continuation_parity; tests/test_cross_resume.py runs the short version).

    python benchmarks/cross_resume.py --data-root ../shared/data/mnist --after 40

Prints one Markdown row per experiment and direction (first step after the checkpoint over
1e-4 / 1e-3 / 1e-2, torch vs jittor against the floor, and the verdict), then one JSON line with
every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from gx.checkpoint import load_checkpoint
from gx.config import load_experiment
from gx.parity.lockstep import continuation_parity, crossings
from gx.train.run import RunOptions, run_experiment

REPO = Path(__file__).resolve().parents[1]


def measure(
    name: str, writer: str, settings: list[str], before: int, after: int, data_root: str | None
) -> dict[str, Any]:
    """Train ``before`` steps on ``writer``, then judge both backends continuing that checkpoint
    for ``after`` steps."""
    path = REPO / "experiments" / f"{name}.yaml"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "run"
        run_experiment(
            load_experiment(path, settings + [f"train.max_steps={before}"]),
            RunOptions(backend=writer, device="cpu", data_root=data_root, out=str(folder)),
        )
        checkpoint = load_checkpoint(folder)
    total = before + after
    run = continuation_parity(
        load_experiment(path, settings + [f"train.max_steps={total}"]),
        checkpoint,
        total,
        "cpu",
        data_root,
    )
    return {
        "experiment": name,
        "seed": run.seed,
        "checkpoint_by": writer,
        "checkpoint_step": before,
        "steps_after": run.steps,
        "cross_first_over": crossings(run.cross),
        "floor_first_over": crossings(run.floor),
        "first_step_difference": run.cross[0],
        "within": run.within,
        "stopped_early": run.stopped_early,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default="cdcgan,cgan")
    parser.add_argument("--writers", default="torch,jittor", help="backends writing checkpoints")
    parser.add_argument("--seeds", default="0", help="experiment seeds, e.g. 0,1,2")
    parser.add_argument("--before", type=int, default=3, help="steps before the checkpoint")
    parser.add_argument("--after", type=int, default=40, help="steps after it")
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=["data.split=test", "train.batch_size=16"],
        help="an experiment setting, after data.split=test and train.batch_size=16",
    )
    arguments = parser.parse_args()
    rows = [
        measure(name, writer, arguments.settings + [f"seed={seed}"], arguments.before,
                arguments.after, arguments.data_root)
        for name in arguments.experiments.split(",")
        for writer in arguments.writers.split(",")
        for seed in arguments.seeds.split(",")
    ]  # fmt: skip
    print(
        "| experiment | seed | checkpoint by | continued on | torch vs jittor | floor | verdict |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        other = "jittor" if row["checkpoint_by"] == "torch" else "torch"
        cross = " / ".join(map(str, row["cross_first_over"].values()))
        floor = " / ".join(map(str, row["floor_first_over"].values()))
        verdict = "within" if row["within"] else "OUTSIDE"
        print(
            f"| {row['experiment']} | {row['seed']} | {row['checkpoint_by']} "
            f"(step {row['checkpoint_step']}) "
            f"| {other} | {cross} | {floor} | {verdict} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
