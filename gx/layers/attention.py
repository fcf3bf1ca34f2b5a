"""Self-attention over the positions of an image: SAGAN's block (Zhang et al., 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, Value, need_rank, positive
from gx.layers.dense import power_iteration_vector, unit_vector

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

# the three 1x1 convolutions, in the order their parameters are initialised
PROJECTIONS = ("f", "g", "h")


@dataclass(frozen=True)
class SelfAttention(Layer):
    """SAGAN's self-attention block over images (C, H, W), in the paper's original form.

    Three 1x1 convolutions map each position x_i to f(x_i) and g(x_i) (C // reduction channels
    each) and h(x_i) (C channels). Every output position j attends to every position i with
    weights beta_j = softmax over i of f(x_i) . g(x_j), and the block returns
    y_j = x_j + gamma * sum_i beta_ji h(x_i), gamma a learned scalar that starts at 0, so the
    block starts as the identity and learns how much attention to mix in.

    This is the first version of the paper (arXiv 1805.08318v1) and of the PyTorch ports most
    code copies. The final version makes h(x) C // reduction channels and maps the sum back to C
    with a fourth 1x1 convolution; BigGAN's block is that form with other widths (C // 8 for f
    and g, C // 2 for h) and 2x2 max pooling of the attended positions.

    ``spectral_norm`` normalizes each convolution's weight by its own power iteration
    (gx.layers.dense.power_iteration_vector). Parameters: f_weight, f_bias, g_weight, g_bias,
    h_weight, h_bias (PyTorch's conv layouts, (out, C, 1, 1)), gamma (1,); with spectral norm,
    the buffers f_sn_u, g_sn_u, h_sn_u.
    """

    kind: ClassVar[str] = "self_attention"
    imported_by = (
        "not recognised in traced code: SAGAN's block is a module of the network's own (three "
        "1x1 convolutions, two batched matrix products and a softmax)"
    )
    # gamma starts at 0, which would make the block the identity and every gradient behind it 0
    parity_cases = {
        "self_attention": ParityCase({"x": [16, 3, 3]}, values={"gamma": 0.7}),
        "self_attention_spectral_norm_reduction_4": ParityCase(
            {"x": [8, 2, 3]},
            {"reduction": 4, "spectral_norm": True, "bias": False},
            values={"gamma": -1.3},
        ),
    }
    reduction: int = 8
    bias: bool = True
    spectral_norm: bool = False  # see gx.layers.dense.power_iteration_vector

    def check(self, name: str) -> None:
        positive(name, reduction=self.reduction)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "self_attention", shape, (3,), "give it images (C, H, W)")
        if shape[0] < self.reduction:
            raise SpecError(
                name,
                f"{shape[0]} channels leave no channel for f and g after reduction "
                f"{self.reduction}",
                f"use a reduction of at most {shape[0]}",
            )
        return shape

    def widths(self, channels: int) -> dict[str, int]:
        """Output channels of f, g and h."""
        reduced = channels // self.reduction
        return {"f": reduced, "g": reduced, "h": channels}

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        params: dict[str, Shape] = {}
        for projection, out in self.widths(channels).items():
            params[f"{projection}_weight"] = (out, channels, 1, 1)
            if self.bias:
                params[f"{projection}_bias"] = (out,)
        params["gamma"] = (1,)
        return params

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        return {
            f"{projection}_{key}": shape
            for projection, out in self.widths(inputs[0].shape[0]).items()
            for key, shape in power_iteration_vector(self.spectral_norm, out).items()
        }

    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        """gamma 0; the convolutions as conv2d's (fan-in C in the default scheme)."""
        if key == "gamma":
            return np.zeros(shape)
        if scheme == "dcgan":
            return rng.normal(0.0, 0.02, shape) if key.endswith("weight") else np.zeros(shape)
        bound = 1.0 / math.sqrt(info.in_shape[0])
        return rng.uniform(-bound, bound, shape)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return unit_vector(shape, rng)

    def flops(self, info: LayerInfo) -> int:
        """The three 1x1 convolutions, the scores f . g (positions x positions x C // reduction)
        and the weighted sum of h (positions x positions x C)."""
        channels, height, width = info.in_shape
        positions = height * width
        widths = self.widths(channels)
        convolutions = 2 * positions * channels * sum(widths.values())
        products = 2 * positions * positions * (widths["f"] + widths["h"])
        return convolutions + products

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {
            "channels": info.in_shape[0],
            "reduced": self.widths(info.in_shape[0])["f"],
            "bias": self.bias,
            "spectral_norm": self.spectral_norm,
        }
