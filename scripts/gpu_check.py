"""The GPU check: gx parity of every experiment on the device, gx bench of every experiment on
both backends and the README's main command, written as one table (markdown and JSON) headed by
the GPU, its driver and the framework versions. Then the same parity and bench rows in bf16 and
fp16 (train.precision) for the flagship experiments; fp16 rows are skipped off CUDA, where gx
refuses fp16.

Run by scripts/gpu-check.sh, which first installs what is missing from the wheels carried
beside the checkout. Each row runs `python -m gx ...` in a child process with a time limit; a
row that fails or runs out of time is a row of the table with its reason, never the end of the
check. Rows not started before --budget seconds are marked as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(path.stem for path in (REPO / "experiments").glob("*.yaml"))
BACKENDS = ("torch", "jittor")
MAIN_COMMAND_STEPS = 800  # the README's main command
LOW_PRECISIONS = ("bf16", "fp16")
LOW_PRECISION_EXPERIMENTS = ("cdcgan", "cgan")


def run_gx(arguments: list[str], limit: float, log: Path) -> tuple[int | str, float, str]:
    """(exit status or "timeout", seconds, output) of `python -m gx ARGUMENTS`."""
    started = time.monotonic()
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "gx", *arguments],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=limit,
        )
        code, output = finished.returncode, finished.stdout + finished.stderr
    except subprocess.TimeoutExpired as stopped:
        code = "timeout"
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part or ""
            for part in (stopped.stdout, stopped.stderr)
        )
    log.write_text(output)
    return code, time.monotonic() - started, output


def last_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error" in line]
    return (errors or lines or ["(no output)"])[-1][:200]


def precision_arguments(precision: str) -> list[str]:
    return [] if precision == "float32" else ["--precision", precision]


def file_label(name: str, precision: str) -> str:
    return name if precision == "float32" else f"{name}-{precision}"


def parity_row(
    name: str, options: argparse.Namespace, folder: Path, precision: str = "float32"
) -> dict[str, Any]:
    report = folder / f"parity-{file_label(name, precision)}"
    code, seconds, output = run_gx(
        [
            "parity",
            f"experiments/{name}.yaml",
            "--device",
            options.device,
            "--steps",
            str(options.steps),
            "--seeds",
            str(options.seeds),
            "--out",
            str(report),
            "--data-root",
            options.data_root,
            "--set",
            "data.split=test",
            *precision_arguments(precision),
        ],
        options.row_limit,
        folder / f"parity-{file_label(name, precision)}.log",
    )
    row: dict[str, Any] = {
        "check": "parity",
        "experiment": name,
        "backend": "both",
        "precision": precision,
        "exit": code,
        "seconds": round(seconds, 1),
    }
    if code in (0, 1) and (report / "parity.json").is_file():
        document = json.loads((report / "parity.json").read_text())
        first = document["seeds"][0]["first_step_over"]
        row.update(
            result=f"{'within' if document['within'] else 'OUTSIDE'} on "
            f"{document['seeds_within']}/{len(document['seeds'])} seeds",
            seed0_cross=first["cross_backend"],
            seed0_floor=first["floor"],
            seed0_far_float32=first.get("far_float32"),
        )
    else:
        row["result"] = f"failed: {last_error(output)}"
    return row


def bench_row(
    name: str, backend: str, options: argparse.Namespace, folder: Path, precision: str = "float32"
) -> dict[str, Any]:
    code, seconds, output = run_gx(
        [
            "bench",
            f"experiments/{name}.yaml",
            "--backend",
            backend,
            "--device",
            options.device,
            "--steps",
            str(options.bench_steps),
            *precision_arguments(precision),
        ],
        options.row_limit,
        folder / f"bench-{file_label(name, precision)}-{backend}.log",
    )
    row: dict[str, Any] = {
        "check": "bench",
        "experiment": name,
        "backend": backend,
        "precision": precision,
        "exit": code,
        "seconds": round(seconds, 1),
    }
    figures = [line for line in output.splitlines() if line.startswith("{")]
    if code == 0 and figures:
        measured = json.loads(figures[-1])
        shares = [
            f"{measured[f'{key}_share']:.0%} of the {label} ceiling"
            for key, label in (("float32_ceiling", "float32"), ("low_precision_ceiling", precision))
            if measured.get(f"{key}_share") is not None
        ]
        kernels = measured.get("low_precision_kernels")
        row.update(
            result=f"{measured['train_images_per_s']:.0f} train images/s, "
            f"{measured['generate_images_per_s']:.0f} generated images/s"
            + "".join(f", {share}" for share in shares)
            + (f" ({kernels} kernels)" if kernels else ""),
            train_images_per_s=measured["train_images_per_s"],
            generate_images_per_s=measured["generate_images_per_s"],
            peak_device_mb=measured["peak_device_mb"],
            low_precision_kernels=kernels,
            float32_ceiling_share=measured.get("float32_ceiling_share"),
            low_precision_ceiling_share=measured.get("low_precision_ceiling_share"),
        )
    else:
        row["result"] = f"failed: {last_error(output)}"
    return row


def main_command_row(options: argparse.Namespace, folder: Path) -> dict[str, Any]:
    run = folder / "main-command-run"
    code, seconds, output = run_gx(
        [
            "run",
            "--backend",
            "torch",
            "experiments/cdcgan.yaml",
            "--device",
            options.device,
            "--data-root",
            options.data_root,
            "--set",
            "data.split=test",
            "--max-steps",
            str(options.main_steps),
            "--set",
            "optimizer.schedule.decay=linear",
            "--out",
            str(run),
        ],
        options.row_limit,
        folder / "main-command.log",
    )
    row: dict[str, Any] = {
        "check": "main command",
        "experiment": "cdcgan",
        "backend": "torch",
        "precision": "float32",
        "exit": code,
        "seconds": round(seconds, 1),
    }
    summary = [line for line in output.splitlines() if line.startswith("steps:")]
    row["result"] = summary[-1] if code == 0 and summary else f"failed: {last_error(output)}"
    return row


def low_precision_rows(
    name: str, precision: str, options: argparse.Namespace, folder: Path
) -> list[tuple[str, str, str, str, Any]]:
    """The planned parity row and bench rows of one experiment in bf16 or fp16."""
    return [
        (
            "parity",
            name,
            "both",
            precision,
            lambda: parity_row(name, options, folder, precision),
        )
    ] + [
        (
            "bench",
            name,
            backend,
            precision,
            lambda backend=backend: bench_row(name, backend, options, folder, precision),
        )
        for backend in BACKENDS
    ]


def describe_machine(device: str) -> dict[str, Any]:
    import torch

    from gx.machine import cpu_model

    machine: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu": cpu_model(),
        "cpu_threads": os.cpu_count(),
    }
    if device == "cuda" and torch.cuda.is_available():
        machine["gpu"] = torch.cuda.get_device_name(0)
        try:
            machine["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            machine["driver"] = None
    try:
        from importlib.metadata import version

        machine["jittor"] = version("jittor")
    except Exception:  # noqa: BLE001 - a missing Jittor is a fact for the table
        machine["jittor"] = None
    return machine


def markdown(machine: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    header = ", ".join(f"{key} {value}" for key, value in machine.items())
    lines = [
        f"gx GPU check: {header}",
        "",
        "| check | experiment | backend | precision | exit | seconds | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['check']} | {row['experiment']} | {row['backend']} | {row['precision']} | "
            f"{row['exit']} | {row['seconds']} | {row['result']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--steps", type=int, default=60, help="gx parity steps")
    parser.add_argument("--seeds", type=int, default=3, help="gx parity seeds")
    parser.add_argument("--bench-steps", type=int, default=20)
    parser.add_argument("--main-steps", type=int, default=MAIN_COMMAND_STEPS)
    parser.add_argument("--data-root", default=str(REPO / ".gpu-check" / "mnist"))
    parser.add_argument("--out", default="reports/gpu-check")
    parser.add_argument("--budget", type=float, default=470, help="seconds for all rows")
    parser.add_argument("--row-limit", type=float, default=240, help="seconds for one row")
    parser.add_argument(
        "--experiments",
        default=",".join(EXPERIMENTS),
        help="comma-separated names from experiments/ (default: all)",
    )
    parser.add_argument(
        "--low-precision-experiments",
        default=",".join(LOW_PRECISION_EXPERIMENTS),
        help="the experiments of the bf16 and fp16 rows (comma-separated; empty: none)",
    )
    options = parser.parse_args()
    experiments = options.experiments.split(",")
    low_precision_experiments = [
        name for name in options.low_precision_experiments.split(",") if name
    ]
    unknown = sorted(set(experiments + low_precision_experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"no experiments/{unknown[0]}.yaml; choose from {', '.join(EXPERIMENTS)}")

    folder = Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # (check, experiment, backend, precision, run)
    planned = (
        [("main command", "cdcgan", "torch", "float32", lambda: main_command_row(options, folder))]
        + [
            ("parity", name, "both", "float32", lambda name=name: parity_row(name, options, folder))
            for name in experiments
        ]
        + [
            (
                "bench",
                name,
                backend,
                "float32",
                lambda name=name, backend=backend: bench_row(name, backend, options, folder),
            )
            for name in experiments
            for backend in BACKENDS
        ]
        + [
            row
            for precision in LOW_PRECISIONS
            for name in low_precision_experiments
            for row in low_precision_rows(name, precision, options, folder)
        ]
    )
    rows = []
    for check, experiment, backend, precision, run in planned:
        if time.monotonic() - started > options.budget:
            skipped = "skipped: over the time budget"
        elif precision == "fp16" and options.device != "cuda":
            skipped = "skipped: fp16 runs on CUDA only (gx refuses it on a CPU)"
        else:
            skipped = ""
        if skipped:
            rows.append(
                {
                    "check": check,
                    "experiment": experiment,
                    "backend": backend,
                    "precision": precision,
                    "exit": "-",
                    "seconds": 0,
                    "result": skipped,
                }
            )
        else:
            rows.append(run())
        print(f"{check} {experiment} {backend} {precision}: {rows[-1]['result']}", flush=True)
    machine = describe_machine(options.device)
    (folder / "gpu-check.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    table = markdown(machine, rows)
    (folder / "gpu-check.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
