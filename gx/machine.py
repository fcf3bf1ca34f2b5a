"""What a parity verdict was measured on: CPU model, instruction sets, threads, denormal mode.

Float32 training amplifies rounding, and rounding depends on the kernels a library picks for the
CPU (AVX2 or AVX-512 matmuls, vector widths of reductions), on thread counts (summation order)
and on whether denormals are flushed; parity.json records all of them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

# Instruction-set families that change which kernels numerical libraries choose.
_ISA_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx")
# Variables that cap instruction sets or set thread counts in PyTorch, MKL, oneDNN and OpenMP.
ENVIRONMENT = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
)
_FLOAT32_TINY = np.float32(np.finfo(np.float32).tiny)  # the smallest normal float32


def _cpuinfo_field(name: str) -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Every CPU flag Linux lists (x86; empty elsewhere)."""
    return _cpuinfo_field("flags").split()


def isa_flags() -> list[str]:
    """The CPU's vector instruction-set flags as Linux lists them (x86; empty elsewhere)."""
    return sorted(flag for flag in cpu_flags() if flag.startswith(_ISA_PREFIXES))


def denormals_flushed() -> bool:
    """Whether this thread flushes float32 denormal results to zero (FTZ) or reads denormal
    inputs as zero (DAZ), measured on arithmetic rather than read from a register."""
    half_tiny = np.array([_FLOAT32_TINY], np.float32) / np.float32(2)  # a denormal under IEEE
    return bool(half_tiny[0] == 0 or (half_tiny * np.float32(2))[0] != _FLOAT32_TINY)


def describe_machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "isa": isa_flags(),
        "cpu_count": os.cpu_count(),
        "denormals": "flushed" if denormals_flushed() else "kept (IEEE)",
        "environment": {name: os.environ[name] for name in ENVIRONMENT if name in os.environ},
    }
