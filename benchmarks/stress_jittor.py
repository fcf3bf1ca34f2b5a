"""Stress gx's Jittor paths for crashes and stalls: parity cases and whole `gx parity` commands,
over and over, each watched for a stall and dumped (py-spy, every thread's Python and native
stack) before it is killed.

    python benchmarks/stress_jittor.py in-process --cases 50      # cases in one process
    python benchmarks/stress_jittor.py fresh --runs 20            # gx parity, a process each
    python benchmarks/stress_jittor.py fresh --runs 3 --empty-cache
    python benchmarks/stress_jittor.py fresh --runs 20 --parallel-compiler 16   # Jittor's default

--empty-cache runs each process with Jittor's compiled kernels set aside (its core is kept, so
only the kernels are compiled again; they are put back afterwards); --parallel-compiler N
compiles on Jittor's N parallel compiler threads instead of gx's default of none. Each line
printed is one process: what it ran, its outcome (ok, crash, stall) and its time. Not a test: it
runs for many minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "mnist"
EXPERIMENTS = ("cgan", "gan", "cdcgan", "dcgan")
SMALL = ("data.split=test", "train.batch_size=16")
# Jittor's crash handler prints these; gx keeps Python's handlers, so they should never appear.
JITTOR_CRASH_MARKS = ("Caught segfault", "Segfault happen", "quick exit")


def parity_cases(cases: int, steps: int, data_root: str) -> None:
    """The child of `in-process`: run_parity on the reference experiments in turn, one line per
    case, in this one process."""
    from gx.config import load_experiment
    from gx.parity import run_parity

    for case in range(cases):
        name = EXPERIMENTS[case % len(EXPERIMENTS)]
        experiment = load_experiment(REPO / "experiments" / f"{name}.yaml", list(SMALL))
        started = time.monotonic()
        result = run_parity(experiment, steps, "cpu", data_root, seeds=1)
        print(
            f"case {case + 1} {name}: within={result.within} {time.monotonic() - started:.1f}s",
            flush=True,
        )


def jittor_cache_folder() -> Path:
    """The folder of Jittor's cache that this interpreter's Jittor uses."""
    probe = (
        "import os; os.environ['log_silent'] = '1'; import jittor_utils; "
        "print(jittor_utils.cache_path)"
    )
    printed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "nvcc_path": ""},
    )
    return Path(printed.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def kernels_set_aside(cache: Path) -> Iterator[None]:
    """Jittor's compiled kernels moved out of its cache for the duration, then put back (the
    kernels compiled meanwhile are dropped). A copy of the cache under another cache_name would
    not do: Jittor finds its core's build keys changed, rebuilds and exits asking for a rerun."""
    kernels, kept = cache / "jit", cache / "jit.kept-by-stress"
    kernels.rename(kept)
    kernels.mkdir()
    try:
        yield
    finally:
        shutil.rmtree(kernels)
        kept.rename(kernels)


def dump_stacks(pid: int) -> str:
    if shutil.which("py-spy") is None:
        return "(py-spy is not installed: pip install py-spy)"
    dumped = subprocess.run(
        ["py-spy", "dump", "--native", "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return dumped.stdout + dumped.stderr


def watch(
    command: list[str],
    environment: dict[str, str],
    stall_seconds: float,
    log: Path,
    finished_codes: tuple[int, ...],
) -> tuple[str, float]:
    """Run ``command``; (outcome, seconds). A stall is no output for ``stall_seconds``; an exit
    status outside ``finished_codes`` is a failure."""
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        last_size, last_change = 0, time.monotonic()
        while process.poll() is None:
            time.sleep(1)
            size = log.stat().st_size
            if size != last_size:
                last_size, last_change = size, time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                output.write("\n--- stalled; stacks:\n" + dump_stacks(process.pid))
                output.flush()
                process.kill()
                process.wait()
                return "stall", time.monotonic() - started
    text = log.read_text(errors="replace")
    seconds = time.monotonic() - started
    if process.returncode < 0 or any(mark in text for mark in JITTOR_CRASH_MARKS):
        return f"crash (exit {process.returncode})", seconds
    if process.returncode not in finished_codes:
        return f"failed (exit {process.returncode})", seconds
    return "ok", seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["in-process", "fresh", "_cases"])
    parser.add_argument("--cases", type=int, default=50, help="in-process: parity cases")
    parser.add_argument("--runs", type=int, default=20, help="fresh: gx parity commands")
    parser.add_argument("--steps", type=int, default=4, help="lockstep steps per case")
    parser.add_argument("--empty-cache", action="store_true")
    parser.add_argument("--parallel-compiler", type=int, default=None, metavar="N")
    parser.add_argument("--stall-seconds", type=float, default=600)
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--logs", default="reports/stress-jittor")
    arguments = parser.parse_args()
    if arguments.mode == "_cases":
        parity_cases(arguments.cases, arguments.steps, arguments.data_root)
        return

    logs = Path(arguments.logs)
    logs.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    if arguments.parallel_compiler is not None:
        environment["use_parallel_op_compiler"] = str(arguments.parallel_compiler)
    cache = jittor_cache_folder() if arguments.empty_cache else None
    processes = 1 if arguments.mode == "in-process" else arguments.runs
    outcomes = []
    for index in range(processes):
        if arguments.mode == "in-process":
            command = [
                sys.executable,
                __file__,
                "_cases",
                "--cases",
                str(arguments.cases),
                "--steps",
                str(arguments.steps),
                "--data-root",
                arguments.data_root,
            ]
            label = f"{arguments.cases} parity cases in one process"
        else:
            name = EXPERIMENTS[index % len(EXPERIMENTS)]
            command = [
                sys.executable,
                "-m",
                "gx",
                "parity",
                f"experiments/{name}.yaml",
                "--steps",
                str(arguments.steps),
                "--seeds",
                "1",
                "--data-root",
                arguments.data_root,
                "--out",
                str(logs / f"report-{index}"),
                *[part for item in SMALL for part in ("--set", item)],
            ]
            label = f"gx parity {name}"
        # gx parity exits 0 within and 1 outside the floor: both are a finished check
        finished_codes = (0,) if arguments.mode == "in-process" else (0, 1)
        with kernels_set_aside(cache) if cache is not None else contextlib.nullcontext():
            outcome, seconds = watch(
                command, environment, arguments.stall_seconds, logs / f"run-{index}.log",
                finished_codes,
            )  # fmt: skip
        outcomes.append(outcome)
        print(f"{index + 1}/{processes} {label}: {outcome}, {seconds:.0f} s", flush=True)
    bad = [outcome for outcome in outcomes if outcome != "ok"]
    print(
        f"{len(outcomes) - len(bad)} of {len(outcomes)} processes ok; "
        f"{sum(o == 'stall' for o in bad)} stalled, {sum(o.startswith('crash') for o in bad)} "
        f"crashed, {sum(o.startswith('failed') for o in bad)} failed (logs in {logs})"
    )


if __name__ == "__main__":
    main()
