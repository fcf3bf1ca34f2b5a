"""Backend registry: import a framework only when it is asked for, and say how to get it.

Also the compile helpers every caller uses: a spec becomes a native module holding gx's initial
weights, and weights move in and out as numpy arrays keyed by spec names.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gx.backends.base import Backend, MaskSource, Module, state_tensors
from gx.errors import BackendUnavailable, GxError
from gx.spec import ModelSpec, initial_state

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


def get_backend(name: str | None, device: str = "auto", dtype: str = "float32") -> Backend:
    """The named backend (None: ``default_backend()``), ready on ``device``."""
    name = name or default_backend()
    if name not in BACKENDS:
        raise GxError(f"unknown backend '{name}'; use one of: {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise GxError(f"unknown device '{device}'; use one of: {', '.join(DEVICES)}")
    require_installed(name)
    package = importlib.import_module(f"gx.backends.{name}")
    return package.create(device, dtype)


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


def check_state(spec: ModelSpec, state: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse weights of another model with one message naming the first mismatch."""
    expected = spec.state_shapes()
    missing = [key for key in expected if key not in state]
    extra = [key for key in state if key not in expected]
    if missing or extra:
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise GxError(
            f"{source} does not fit this model ({detail}); it was saved from a "
            "different model: use a checkpoint of the same experiment"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise GxError(
                f"{source} does not fit this model: '{key}' has shape "
                f"{tuple(state[key].shape)}, the model needs {tuple(shape)}; use a "
                "checkpoint of the same experiment"
            )


def load_weights(
    backend: Backend,
    module: Module,
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    source: str = "the weights",
) -> None:
    check_state(spec, state, source)
    for key, tensor in state_tensors(module, spec).items():
        backend.assign(
            tensor,
            np.asarray(state[key], dtype=np.float64 if backend.dtype == "float64" else np.float32),
        )


def get_weights(backend: Backend, module: Module, spec: ModelSpec) -> dict[str, np.ndarray]:
    return {
        key: backend.numpy(tensor).astype(np.float32)
        for key, tensor in state_tensors(module, spec).items()
    }


def compile_spec(
    backend: Backend,
    spec: ModelSpec,
    seed: int | Sequence[int],
    masks: MaskSource | None = None,
    rounding: str = "nearest",
) -> Module:
    """A native module for ``spec`` holding gx's seeded initial weights, in training mode
    (``rounding``: how their float64 draws become float32, see gx.spec.init)."""
    module = backend.build(spec, masks)
    load_weights(
        backend, module, spec, initial_state(spec, seed, rounding=rounding), "the initial weights"
    )
    backend.set_training(module, True)
    return module
