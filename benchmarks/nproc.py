"""Data-parallel speed: images/s of `gx run --nproc N` at several process × thread layouts.

Each layout trains the same experiment for ``--steps`` steps in a fresh run folder, as a user
would start it (``python -m gx run ... --nproc N`` with ``OMP_NUM_THREADS`` set to the threads per
process). The figure is the run's own ``images_per_s_median`` (global batch over rank 0's step
time, first step left out, from summary.json), beside the wall time of the whole command,
which includes the launcher, start-up and (Jittor) kernel compilation.

    python benchmarks/nproc.py          # cdcgan, torch and jittor, 1x2 and 2x1
    python benchmarks/nproc.py --layouts 1x1,1x2,2x1 --backends jittor --steps 100

On a CPU the layouts share the same cores: 1x2 is one process with 2 threads, 2x1 two processes
with 1 thread each and half the global batch. The last line printed is one JSON object with
every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gx.machine import cpu_model, isa_flags

REPO = Path(__file__).resolve().parents[1]


def parse_layouts(text: str) -> list[tuple[int, int]]:
    """'1x2,2x1' -> [(1 process, 2 threads), (2 processes, 1 thread)]."""
    layouts = []
    for item in filter(None, text.split(",")):
        processes, _, threads = item.partition("x")
        layouts.append((int(processes), int(threads)))
    return layouts


def time_layout(
    experiment: str,
    backend: str,
    processes: int,
    threads: int,
    steps: int,
    extra: list[str],
    work: Path,
) -> dict[str, Any]:
    folder = work / f"{Path(experiment).stem}-{backend}-{processes}x{threads}"
    command = [
        sys.executable,
        "-m",
        "gx",
        "run",
        experiment,
        "--backend",
        backend,
        "--nproc",
        str(processes),
        "--max-steps",
        str(steps),
        "--out",
        str(folder),
        "--set",
        f"train.sample_every={steps}",
        "--set",
        f"train.checkpoint_every={steps}",
    ]
    for override in extra:
        command += ["--set", override]
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
    began = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({finished.returncode}):\n"
            f"{finished.stdout[-3000:]}{finished.stderr[-3000:]}"
        )
    wall = time.perf_counter() - began
    summary = json.loads((folder / "summary.json").read_text())
    return {
        "backend": backend,
        "processes": processes,
        "threads_per_process": threads,
        "steps": steps,
        "images_per_s": round(summary["images_per_s_median"], 1),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="experiments/cdcgan.yaml")
    parser.add_argument("--backends", default="torch,jittor")
    parser.add_argument("--layouts", default="1x2,2x1", help="PROCESSESxTHREADS, comma-separated")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--split", default="test", choices=["train", "test", "both"])
    parser.add_argument(
        "--set", dest="extra", action="append", default=[], help="an override applied to every run"
    )
    parser.add_argument("--work", default=None, help="run folders go here (default: a temp dir)")
    args = parser.parse_args()

    extra = [f"data.split={args.split}", f"data.root={args.data_root}", *args.extra]
    work = Path(args.work or tempfile.mkdtemp(prefix="gx-nproc-"))
    rows = []
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; {args.experiment}, "
        f"{args.steps} steps",
        flush=True,
    )
    print(f"{'backend':<8} {'layout':<18} {'images/s':>9} {'wall s':>7}", flush=True)
    for backend in args.backends.split(","):
        for processes, threads in parse_layouts(args.layouts):
            row = time_layout(args.experiment, backend, processes, threads, args.steps, extra, work)
            rows.append(row)
            layout = f"{processes} proc x {threads} thr"
            print(
                f"{backend:<8} {layout:<18} {row['images_per_s']:>9.1f} {row['wall_s']:>7.1f}",
                flush=True,
            )
    print(
        json.dumps(
            {"cpu": cpu_model(), "isa": isa_flags(), "experiment": args.experiment, "rows": rows}
        )
    )


if __name__ == "__main__":
    main()
