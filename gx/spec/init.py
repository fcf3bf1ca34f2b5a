"""Initial weights drawn in numpy, so both backends start from identical values by construction.

Two schemes, each layer kind saying what it means for its own tensors
(``Layer.initial_value``, ``Layer.initial_buffer`` in gx.layers):
- ``default``: the distributions PyTorch's layers use in ``reset_parameters`` (uniform with bound
  1/sqrt(fan_in) for linear and convolution weights and biases, N(0, 1) for embeddings, ones and
  zeros for batch norm);
- ``dcgan``: the DCGAN paper's N(0, 0.02) for linear and convolution weights, zero biases, and
  batch-norm scales from N(1, 0.02).

Tensors are drawn in spec order (layer by layer, parameters then buffers) from one
``numpy.random.default_rng(seed)``, in float64. Parameters are then rounded to float32: to the
nearest float32, or (``rounding="other"``, for the parity floor) to the float32 on the other side
of the float64 draw, an equally valid rounding at most one unit in the last place away. Buffers
are rounded to the nearest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gx.spec.graph import ModelSpec


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
    scheme, to_float32 = scheme or spec.init, _ROUNDINGS[rounding]
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for info in spec.infos:
        for key, shape in info.parameters.items():
            drawn = info.layer.initial_value(info, key, shape, scheme, rng)
            state[f"{info.name}.{key}"] = to_float32(np.asarray(drawn, np.float64))
        for key, shape in info.buffers.items():
            drawn = info.layer.initial_buffer(key, shape, rng)
            state[f"{info.name}.{key}"] = np.asarray(drawn, np.float64).astype(np.float32)
    return state
