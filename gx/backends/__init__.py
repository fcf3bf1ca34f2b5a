"""Backend registry: import a framework only when it is asked for, and say how to get it.

Everything else goes through the ``Backend`` object ``get_backend`` returns (gx.backends.base):
compiling a spec, moving weights in and out as numpy, training primitives.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

from gx.backends.base import Backend
from gx.errors import BackendUnavailable, GxError
from gx.precision import FLOAT32, check_device, check_precision

BACKENDS = ("torch", "jittor")
DEVICES = ("auto", "cpu", "cuda")
_INSTALL_HINTS = {
    "torch": "pip install torch==2.13.0   (CPU build; see pytorch.org for CUDA builds)",
    "jittor": "pip install 'jittor>=1.3.8,<1.4' 'numpy<2'   "
    "(and apt install libdnnl-dev for fast CPU convolutions)",
}


def available(name: str) -> bool:
    """Whether the framework can be imported, checked without importing it."""
    return importlib.util.find_spec(name) is not None


def default_backend() -> str:
    """The backend used when none is named: torch when installed, else jittor.

    With neither installed it is torch, so that the error names what to install.
    """
    return next((name for name in BACKENDS if available(name)), BACKENDS[0])


def checkpoint_backend(state: Mapping[str, Any]) -> str:
    """For a checkpoint's ``state``: the backend that trained it when installed, else the default.

    Either backend samples any checkpoint; preferring its own keeps Jittor-only machines working.
    """
    trained_by = (state.get("backend") or {}).get("backend")
    if trained_by in BACKENDS and available(trained_by):
        return trained_by
    return default_backend()


def get_backend(
    name: str | None, device: str = "auto", dtype: str = "float32", precision: str = FLOAT32
) -> Backend:
    """The named backend (None: ``default_backend()``), ready on ``device``, computing in
    ``precision`` (gx.precision; fp16 only on CUDA)."""
    name = name or default_backend()
    if name not in BACKENDS:
        raise GxError(f"unknown backend '{name}'; use one of: {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise GxError(f"unknown device '{device}'; use one of: {', '.join(DEVICES)}")
    check_precision(precision)
    require_installed(name)
    package = importlib.import_module(f"gx.backends.{name}")
    backend: Backend = package.create(device, dtype, precision)
    check_device(precision, backend.device)
    return backend


def require_installed(name: str) -> None:
    """Refuse a backend whose framework is missing, naming how to install it (no import)."""
    if not available(name):
        raise BackendUnavailable(
            f"the {name} backend needs {name}, which is not installed; "
            f"install it with: {_INSTALL_HINTS[name]}"
        )


def cuda_missing(name: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"--device cuda was asked for, but {name} sees no CUDA GPU on this "
        "machine; use --device cpu (or auto)"
    )
