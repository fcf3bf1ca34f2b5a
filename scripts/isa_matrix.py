"""Run the cross-framework tests under every x86 instruction set this CPU runs, down to AVX2.

    .venv/bin/python scripts/isa_matrix.py [--levels native,AVX2] [-- PYTEST ARGUMENTS]

The tests marked ``cross_framework`` compare two frameworks or runtimes, whose float32 rounding
comes from the kernels the CPU's instruction set selects; this runs them once per level, so one
machine shows the verdict other CPUs would give. A level caps every kernel library gx uses, each
through its own documented switch, in the child pytest's environment:

- PyTorch's own kernels: ``ATEN_CPU_CAPABILITY``;
- oneDNN (PyTorch's and Jittor's convolutions): ``ONEDNN_MAX_CPU_ISA`` and ``DNNL_MAX_CPU_ISA``;
- MKL (PyTorch's matrix products): ``MKL_ENABLE_INSTRUCTIONS``;
- Jittor's compiled kernels: ``cc_flags`` (appended to Jittor's compiler flags: the last
  ``-march`` wins over its ``-march=native``), with ``cache_name`` giving them a cache of their
  own, so the native kernels stay cached. The first run of a level compiles Jittor's core and
  kernels for it (minutes).

Prints one line per level (the kernel levels the child processes report, then pytest's
summary) and exits 1 when any level fails. docs/cpu-independence.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

# Level name -> (the CPU flags it needs, the environment that caps every library to it).
LEVELS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "native": ((), {}),
    "AVX2": (
        ("avx2", "fma"),
        {
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "DNNL_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            # x86-64-v3: AVX2, FMA, BMI1/2, F16C and nothing of AVX-512
            "cc_flags": " -march=x86-64-v3 ",
            "cache_name": "gx-isa-avx2",
        },
    ),
}

# What a child process reports of the kernels it ended up with.
PROBE = """
import json, torch
from gx.backends import get_backend
from gx.backends.jittor.environment import optimisation_flags
get_backend("jittor", "cpu")  # sets Jittor's environment up before it is imported
import jittor
print(json.dumps({"torch": torch.backends.cpu.get_cpu_capability(),
                  "jittor": [f for f in optimisation_flags(jittor.flags.cc_flags)
                             if f.startswith("-march")]}))
"""


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def run_level(name: str, environment: dict[str, str], pytest_arguments: list[str]) -> dict:
    child_environment = {**os.environ, **environment}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=child_environment,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    kernels = json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else {}
    started = time.monotonic()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cross_framework", *pytest_arguments],
        env=child_environment,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = tests.stdout.strip().splitlines()
    return {
        "level": name,
        "kernels": kernels or f"probe failed: {probe.stderr.strip()[-300:]}",
        "status": tests.returncode,
        "summary": lines[-1] if lines else tests.stderr.strip()[-300:],
        "failures": [line for line in lines if line.startswith("FAILED")],
        "seconds": round(time.monotonic() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--levels", default=",".join(LEVELS), help="comma-separated, of: " + ", ".join(LEVELS)
    )
    parser.add_argument("pytest_arguments", nargs="*", help="after --: passed to pytest")
    arguments = parser.parse_args()
    flags = cpu_flags()
    failed = False
    for name in arguments.levels.split(","):
        needed, environment = LEVELS[name]
        if not set(needed) <= flags:
            print(f"{name}: skipped, this CPU lacks {' '.join(sorted(set(needed) - flags))}")
            continue
        result = run_level(name, environment, arguments.pytest_arguments)
        failed |= result["status"] != 0
        print(
            f"{name}: kernels {result['kernels']}; {result['summary']} ({result['seconds']} s)",
            flush=True,
        )
        for line in result["failures"]:
            print(f"  {line}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
