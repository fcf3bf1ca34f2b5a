"""The parity table: `gx parity` on every reference experiment, verdicts at several step counts.

Runs ``gx parity EXPERIMENT --steps N`` once per experiment (in a subprocess, with any ``--env``
variables set, e.g. an instruction-set cap) and judges the first 60, 200, ... steps of the same
lockstep run with gx's own rule: the first steps of a longer run are exactly the shorter run,
since every training is deterministic.

    python benchmarks/parity_table.py                                   # all five, 200 steps
    python benchmarks/parity_table.py --env ATEN_CPU_CAPABILITY=avx2 --env ONEDNN_MAX_CPU_ISA=AVX2

Prints one Markdown row per experiment and step count (each seed's first step over 1e-4 /
1e-3 / 1e-2, torch vs jittor against the floor, then the verdict: within on most seeds), then
one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gx.parity.lockstep import THRESHOLDS, crossings, majority_within, within_floor

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = "cdcgan,cdcgan_seed,dcgan,cgan,gan"


def shown(first: dict[str, int], steps: int) -> str:
    """First steps over 1e-4 / 1e-3 / 1e-2 as the tables of docs/parity-measurements.md show
    them ("-": none)."""
    values = [first[f"{threshold:g}"] for threshold in THRESHOLDS]
    if all(value > steps for value in values):
        return f"none in {steps} steps"
    return " / ".join(str(value) if value <= steps else "-" for value in values)


def judge(report: dict[str, Any], steps: int) -> dict[str, Any]:
    """gx's verdict over the first ``steps`` steps of every seed's curves."""
    pairs = [
        (run["cross_difference"][:steps], run["floor_difference"][:steps])
        for run in report["seeds"]
    ]
    done = min(len(cross) for cross, _ in pairs)
    per_seed = [
        f"{shown(crossings(c), done)} vs {shown(crossings(f), done)}"
        f" ({'within' if within_floor(c, f) else 'OUTSIDE'})"
        for c, f in pairs
    ]
    return {
        "steps": done,
        "seeds": per_seed,
        "seeds_within": sum(within_floor(c, f) for c, f in pairs),
        "within": majority_within(pairs) and done == steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", default=EXPERIMENTS)
    parser.add_argument("--steps", type=int, default=200, help="lockstep steps to run")
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds per verdict (gx parity --seeds)"
    )
    parser.add_argument("--at", default="60,200", help="step counts to judge")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for gx parity")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--work", default="reports/parity-table")
    args = parser.parse_args()

    environment = dict(os.environ)
    environment.update(item.split("=", 1) for item in args.env)
    checkpoints = [int(step) for step in args.at.split(",")]
    rows = []
    print(
        "| experiment | steps | each seed: first step over 1e-4 / 1e-3 / 1e-2, torch vs jittor "
        "against the floor | verdict |\n|---|---|---|---|",
        flush=True,
    )
    for name in args.experiments.split(","):
        folder = Path(args.work) / name
        (folder / "parity.json").unlink(missing_ok=True)  # never judge an earlier run's report
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gx",
                "parity",
                f"experiments/{name}.yaml",
                "--steps",
                str(args.steps),
                "--seeds",
                str(args.seeds),
                "--set",
                "data.split=test",
                "--data-root",
                args.data_root,
                "--out",
                str(folder),
            ],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
        )
        report = json.loads((folder / "parity.json").read_text())
        for steps in checkpoints:
            row = {"experiment": name, **judge(report, steps)}
            rows.append(row)
            verdict = (
                f"{'within' if row['within'] else 'OUTSIDE'} "
                f"({row['seeds_within']} of {len(row['seeds'])})"
            )
            if report["stopped_early"]:
                verdict += f" (stopped: {report['stopped_early']})"
            print(f"| {name} | {steps} | {'; '.join(row['seeds'])} | {verdict} |", flush=True)
        machine = report["machine"]
    print(json.dumps({"env": args.env, "machine": machine, "rows": rows}))


if __name__ == "__main__":
    main()
