"""Normalization layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, Value, need_rank
from gx.layers.importing import Unsupported

if TYPE_CHECKING:
    from gx.spec.graph import LayerInfo
    from gx.spec.masks import MaskSource

_RUNNING_START = {"running_mean": 0.0, "running_var": 1.0}


def check_eps_momentum(name: str, eps: float, momentum: float) -> None:
    if not isinstance(eps, (int, float)) or eps <= 0:
        raise SpecError(name, f"eps must be > 0, got {eps!r}", "use e.g. 1e-5")
    if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise SpecError(name, f"momentum must be in [0, 1], got {momentum!r}", "use e.g. 0.1")


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch norm over features (C,) or channels (C, H, W); 1d or 2d follows the input.

    gx's definition (both backends): normalise with the biased batch variance computed in two
    passes, and store the *unbiased* variance in ``running_var``, as PyTorch does;
    running = (1 - momentum) * running + momentum * batch.
    """

    kind: ClassVar[str] = "batch_norm"
    torch_modules = ("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d")
    parity_cases = {
        "batch_norm_1d": ParityCase({"x": [6]}, init="dcgan"),
        "batch_norm_1d_eps_0.8": ParityCase({"x": [6]}, {"eps": 0.8}, init="dcgan"),
        "batch_norm_2d": ParityCase({"x": [3, 4, 4]}, init="dcgan"),
        "batch_norm_2d_eps_0.8_momentum_0.3": ParityCase(
            {"x": [3, 4, 4]}, {"eps": 0.8, "momentum": 0.3}, init="dcgan"
        ),
    }
    eps: float = 1e-5
    momentum: float = 0.1

    def check(self, name: str) -> None:
        check_eps_momentum(name, self.eps, self.momentum)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "batch_norm", shape, (1, 3), "normalise features (C,) or images (C, H, W)")
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"weight": (channels,), "bias": (channels,)}

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"running_mean": (channels,), "running_var": (channels,)}

    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        """Scales 1 and shifts 0 (PyTorch's); ``dcgan``: scales from N(1, 0.02)."""
        if key == "bias":
            return np.zeros(shape)
        return rng.normal(1.0, 0.02, shape) if scheme == "dcgan" else np.ones(shape)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, _RUNNING_START[key])

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"num_features": info.in_shape[0], "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if not module.affine:
            raise Unsupported("has affine=False; gx's batch_norm always learns a scale and shift")
        if not module.track_running_stats:
            raise Unsupported(
                "has track_running_stats=False; gx's batch_norm keeps running statistics for "
                "eval mode"
            )
        if module.momentum is None:
            raise Unsupported(
                "has momentum=None (a cumulative average); gx's batch_norm takes a number, "
                "e.g. momentum=0.1"
            )
        return {"eps": float(module.eps), "momentum": float(module.momentum)}
