"""Initial weights drawn in numpy, so both backends start from identical values by construction.

Two schemes:
- ``default``: the distributions PyTorch's layers use in ``reset_parameters`` (uniform with bound
  1/sqrt(fan_in) for linear and convolution weights and biases, N(0, 1) for embeddings, ones and
  zeros for batch norm). For a transposed convolution PyTorch takes fan_in from the weight's
  second axis (out_channels x kernel x kernel); gx does the same.
- ``dcgan``: the DCGAN paper's N(0, 0.02) for linear and convolution weights, zero biases, and
  batch-norm scales from N(1, 0.02).

Tensors are drawn in spec order (layer by layer, parameter by parameter) from one
``numpy.random.default_rng(seed)``, in float64 and then rounded to float32: to the nearest
float32, or (``rounding="other"``, for the parity floor) to the float32 on the other side of the
float64 draw, an equally valid rounding at most one unit in the last place away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gx.spec.graph import LayerInfo, ModelSpec


def _fan_in(info: LayerInfo) -> int:
    weight = info.parameters["weight"]
    receptive = int(np.prod(weight[2:])) if len(weight) > 2 else 1
    return weight[1] * receptive


def _default(
    info: LayerInfo, key: str, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    if info.kind == "batch_norm":
        return np.ones(shape) if key == "weight" else np.zeros(shape)
    if info.kind == "embedding":
        return rng.standard_normal(shape)
    bound = 1.0 / math.sqrt(_fan_in(info))
    return rng.uniform(-bound, bound, shape)


def _dcgan(
    info: LayerInfo, key: str, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    if info.kind == "batch_norm":
        return rng.normal(1.0, 0.02, shape) if key == "weight" else np.zeros(shape)
    if info.kind == "embedding":
        return rng.standard_normal(shape)
    return rng.normal(0.0, 0.02, shape) if key == "weight" else np.zeros(shape)


_SCHEMES = {"default": _default, "dcgan": _dcgan}
_BUFFER_START = {"running_mean": 0.0, "running_var": 1.0}


def round_other_way(values: np.ndarray) -> np.ndarray:
    """float64 ``values`` as the float32 neighbour that nearest rounding did not pick (values
    exact in float32 stay as they are)."""
    nearest = values.astype(np.float32)
    toward = np.where(values > nearest, np.float32(np.inf), np.float32(-np.inf))
    return np.where(nearest == values, nearest, np.nextafter(nearest, toward))


def _round_nearest(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32)


_ROUNDINGS = {"nearest": _round_nearest, "other": round_other_way}


def initial_state(
    spec: ModelSpec, seed: int | Sequence[int], scheme: str | None = None, rounding: str = "nearest"
) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``spec`` as float32 arrays keyed 'layer.name'."""
    draw, to_float32 = _SCHEMES[scheme or spec.init], _ROUNDINGS[rounding]
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for info in spec.infos:
        for key, shape in info.parameters.items():
            state[f"{info.name}.{key}"] = to_float32(
                np.asarray(draw(info, key, shape, rng), np.float64)
            )
        for key, shape in info.buffers.items():
            if key == "sn_u":  # spectral normalization's unit vector (gx.spec.layers)
                vector = rng.standard_normal(shape)
                state[f"{info.name}.{key}"] = (vector / np.linalg.norm(vector)).astype(np.float32)
            else:
                state[f"{info.name}.{key}"] = np.full(shape, _BUFFER_START[key], np.float32)
    return state
