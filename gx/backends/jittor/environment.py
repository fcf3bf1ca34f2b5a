"""Prepare the process environment before Jittor is imported.

Jittor reads its settings from environment variables at import time, and two of its defaults break
on ordinary machines: it picks up any ``nvcc`` on PATH (and crashes when no CUDA runtime exists),
and it downloads oneDNN at import. gx sets both explicitly, and points Jittor at the system's oneDNN
(Debian's ``libdnnl-dev``) when present: without it Jittor's CPU convolutions are ~70x slower.
It also compiles kernels on the calling thread, not on Jittor's parallel compiler threads.
After the import, ``ieee_kernel_flags`` keeps Jittor's kernels from switching the process to
flush-to-zero.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

# Jittor looks for exactly this folder under its cache and skips its download when the library
# and headers are there (jittor/compile_extern.py: install_mkl / setup_mkl).
_JITTOR_DNNL_DIR = "dnnl_lnx_2.2.0_cpu_gomp"
_SYSTEM_HEADER_DIRS = (Path("/usr/include"), Path("/usr/local/include"))

# Jittor compiles every CPU kernel with -Ofast. Linking a shared object with -Ofast also links
# gcc's crtfastmath.o, whose constructor sets flush-to-zero and denormals-are-zero (FTZ/DAZ in
# x86's MXCSR) in the thread that loads the kernel, and threads started later inherit it. From
# the first Jittor op on, the whole process, PyTorch and numpy included, then computes float32
# without denormals, and numpy warns "The value of the smallest subnormal ... is zero". gcc
# drops -Ofast when a later -O option follows it on the command line (and with it
# crtfastmath.o), so appending one gives the kernels PyTorch's IEEE arithmetic: denormals kept,
# no reassociation, no finite-math assumptions. gcc 12 has no narrower switch (-mno-daz-ftz
# is gcc 13's).
IEEE_OPTIMISATION = "-O3"


def _system_dnnl() -> tuple[Path, Path] | None:
    """(library, header folder) of a system oneDNN, or None."""
    name = ctypes.util.find_library("dnnl")
    if name is None:
        return None
    library = None
    for folder in (
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/usr/local/lib",
        "/usr/lib64",
    ):
        candidate = Path(folder) / name
        if candidate.exists():
            library = candidate
            break
    headers = next((d for d in _SYSTEM_HEADER_DIRS if (d / "dnnl.h").exists()), None)
    if library is None or headers is None:
        return None
    return library, headers


def _link_dnnl_into_jittor_cache(library: Path, headers: Path) -> bool:
    home = Path(os.environ.get("HOME", str(Path.home())))
    target = home / ".cache" / "jittor" / "mkl" / _JITTOR_DNNL_DIR
    try:
        (target / "lib").mkdir(parents=True, exist_ok=True)
        (target / "include").mkdir(parents=True, exist_ok=True)
        link = target / "lib" / "libmkldnn.so"
        if not link.exists():
            link.symlink_to(library)
        for header in headers.glob("dnnl*.h*"):
            dest = target / "include" / header.name
            if not dest.exists():
                dest.symlink_to(header)
    except OSError:
        return False
    return True


def cuda_runtime_present() -> bool:
    # A CUDA toolkit without a GPU (libcudart installed, no /dev/nvidiactl) is common on build
    # machines; treating it as a GPU made --device auto pick cuda and crash Jittor's import.
    return Path("/dev/nvidiactl").exists()


def prepare(device: str) -> dict[str, str]:
    """Set Jittor's environment variables for ``device`` ('cpu' or 'cuda'); return what was set.

    Variables the user already set are left alone, so an expert can still override any of them.
    """
    chosen: dict[str, str] = {}

    def default(name: str, value: str) -> None:
        if name not in os.environ:
            os.environ[name] = value
            chosen[name] = value

    if device == "cpu" or not cuda_runtime_present():
        default("nvcc_path", "")
    dnnl = _system_dnnl()
    if dnnl is not None and _link_dnnl_into_jittor_cache(*dnnl):
        default("use_mkl", "1")
    else:
        default("use_mkl", "0")
    default("log_silent", "1")
    # Jittor compiles (or loads from its cache) the kernels of each new graph on a pool of up to
    # 16 threads. One of them crashed with a segfault while a parity check compiled its layer
    # probe (about one parity case in 16, on a 2-vCPU Zen 4), and Jittor's handler then called
    # exit(), which waited forever on the pool's mutex. gx compiles on the calling thread instead:
    # kernels are cached on disk, so the cost falls on a first run (docs/process-safety.md).
    default("use_parallel_op_compiler", "0")
    return chosen


def ieee_kernel_flags(flags: str) -> str:
    """Jittor's kernel compiler flags (``jt.flags.cc_flags``) with its -Ofast cancelled.

    Only kernels compiled or loaded after the change are affected: gx applies it before running
    any op. Jittor's cache key includes the command line, so cached -Ofast kernels get rebuilt.
    """
    tokens = flags.split()
    if "-Ofast" not in tokens:
        return flags
    last_fast = len(tokens) - 1 - tokens[::-1].index("-Ofast")
    if any(token.startswith("-O") for token in tokens[last_fast + 1 :]):
        return flags
    return f"{flags} {IEEE_OPTIMISATION} "


def optimisation_flags(flags: str) -> list[str]:
    """The code-generation part of a compiler command line (-O, -f, -m), for reports."""
    return [token for token in flags.split() if token.startswith(("-O", "-f", "-m"))]


def onednn_enabled() -> bool:
    return os.environ.get("use_mkl", "1") == "1"
