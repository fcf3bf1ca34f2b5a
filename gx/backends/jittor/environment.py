"""Prepare the process environment before Jittor is imported.

Jittor reads its settings from environment variables at import time, and two of its defaults break
on ordinary machines: it picks up any ``nvcc`` on PATH (and crashes when no CUDA runtime exists),
and it downloads oneDNN at import. gx sets both explicitly, and points Jittor at the system's oneDNN
(Debian's ``libdnnl-dev``) when present: without it Jittor's CPU convolutions are ~70x slower.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

# Jittor looks for exactly this folder under its cache and skips its download when the library
# and headers are there (jittor/compile_extern.py: install_mkl / setup_mkl).
_JITTOR_DNNL_DIR = "dnnl_lnx_2.2.0_cpu_gomp"
_SYSTEM_HEADER_DIRS = (Path("/usr/include"), Path("/usr/local/include"))


def _system_dnnl() -> tuple[Path, Path] | None:
    """(library, header folder) of a system oneDNN, or None."""
    name = ctypes.util.find_library("dnnl")
    if name is None:
        return None
    library = None
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib",
                   "/usr/local/lib", "/usr/lib64"):
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
    return chosen


def onednn_enabled() -> bool:
    return os.environ.get("use_mkl", "1") == "1"
