"""Convolutions and transposed convolutions over (channels, height, width), square kernels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, Value, need_rank, non_negative, positive
from gx.layers.dense import power_iteration_vector, unit_vector
from gx.layers.importing import Unsupported

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

Padding = Union[int, str]


def square(value: Any, setting: str) -> int:
    """One int from PyTorch's int-or-pair settings; gx's kernels, strides, paddings and scales
    are square."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(values)) != 1:
        raise Unsupported(
            f"has {setting} {values}; gx takes one {setting} for height and width: make them equal"
        )
    return int(values[0])


def plain_convolution(module: Any) -> None:
    """Refuse the settings of PyTorch's convolutions that gx's do not have."""
    if tuple(module.dilation) != (1, 1):
        raise Unsupported(f"has dilation {tuple(module.dilation)}; gx convolutions use 1")
    if module.groups != 1:
        raise Unsupported(f"has groups={module.groups}; gx convolutions use 1")
    if module.padding_mode != "zeros":
        raise Unsupported(f"pads with '{module.padding_mode}'; gx convolutions pad with zeros")


def _positions_flops(weight: Shape, positions: Shape) -> int:
    """A convolution multiplies the whole kernel (in x out x k x k) at every position."""
    return 2 * math.prod(weight) * math.prod(positions)


@dataclass(frozen=True)
class Conv2d(Layer):
    kind: ClassVar[str] = "conv2d"
    torch_modules = ("torch.nn.Conv2d",)
    parity_cases = {
        "conv2d": ParityCase({"x": [3, 9, 9]}, {"out": 4, "kernel": 3, "stride": 2, "padding": 1}),
        "conv2d_spectral_norm": ParityCase(
            {"x": [3, 9, 9]},
            {"out": 4, "kernel": 3, "stride": 2, "padding": 1, "spectral_norm": True},
        ),
        "conv2d_same_k5": ParityCase(
            {"x": [2, 7, 7]}, {"out": 3, "kernel": 5, "padding": "same", "bias": False}
        ),
    }
    out: int
    kernel: int
    stride: int = 1
    padding: Padding = 0  # an integer, or "same" (stride 1, odd kernel)
    bias: bool = True
    spectral_norm: bool = False  # see gx.layers.dense.power_iteration_vector

    def check(self, name: str) -> None:
        positive(name, out=self.out, kernel=self.kernel, stride=self.stride)
        if self.padding == "same":
            if self.stride != 1 or self.kernel % 2 == 0:
                raise SpecError(
                    name,
                    "padding 'same' on conv2d needs stride 1 and an odd kernel",
                    "give an integer padding instead",
                )
        else:
            non_negative(name, padding=int(self.padding))

    def pad(self) -> int:
        return (self.kernel - 1) // 2 if self.padding == "same" else int(self.padding)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "conv2d", shape, (3,), "reshape the input to (channels, height, width)")
        _, height, width = shape
        sizes = [
            (size + 2 * self.pad() - self.kernel) // self.stride + 1 for size in (height, width)
        ]
        if min(sizes) < 1:
            raise SpecError(
                name,
                f"kernel {self.kernel} with padding {self.pad()} does not fit the input {shape}",
                "use a smaller kernel or more padding",
            )
        return (self.out, sizes[0], sizes[1])

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {
            "weight": (self.out, inputs[0].shape[0], self.kernel, self.kernel)
        }
        if self.bias:
            params["bias"] = (self.out,)
        return params

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        return power_iteration_vector(self.spectral_norm, self.out)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return unit_vector(shape, rng)

    def flops(self, info: LayerInfo) -> int:
        return _positions_flops(info.parameters["weight"], info.output.shape[1:])

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        # spectral_norm is passed only where it is on: the plain layer is the framework's own
        normalized = {"spectral_norm": True} if self.spectral_norm else {}
        return {
            "in_channels": info.in_shape[0],
            "out_channels": self.out,
            "kernel_size": self.kernel,
            "stride": self.stride,
            "padding": self.pad(),
            "bias": self.bias,
            **normalized,
        }

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        plain_convolution(module)
        kernel = square(module.kernel_size, "kernel_size")
        padding: int | str
        if module.padding == "valid":
            padding = 0
        elif module.padding == "same":
            if kernel % 2 == 0:
                # PyTorch pads an even kernel more on one side; gx's 'same' needs an odd one
                raise Unsupported("has padding='same' with an even kernel; give integer padding")
            padding = "same"
        else:
            padding = square(module.padding, "padding")
        return {
            "out": module.out_channels,
            "kernel": kernel,
            "stride": square(module.stride, "stride"),
            "padding": padding,
            "bias": module.bias is not None,
        }


@dataclass(frozen=True)
class ConvTranspose2d(Layer):
    kind: ClassVar[str] = "conv_transpose2d"
    framework_classes = {
        "torch": "torch.nn.ConvTranspose2d",
        "jittor": "jittor.nn.ConvTranspose2d",
    }
    torch_modules = ("torch.nn.ConvTranspose2d",)
    parity_cases = {
        "conv_transpose2d": ParityCase(
            {"x": [3, 5, 5]}, {"out": 4, "kernel": 4, "stride": 2, "padding": 1}
        ),
        "conv_transpose2d_output_padding": ParityCase(
            {"x": [3, 5, 5]},
            {"out": 2, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
        ),
        "conv_transpose2d_same_k5s2": ParityCase(
            {"x": [3, 7, 7]}, {"out": 2, "kernel": 5, "stride": 2, "padding": "same"}
        ),
        "conv_transpose2d_same_k4s2": ParityCase(
            {"x": [3, 6, 6]},
            {"out": 2, "kernel": 4, "stride": 2, "padding": "same", "bias": False},
        ),
    }
    out: int
    kernel: int
    stride: int = 1
    padding: Padding = 0  # an integer, or "same": output size = input size x stride
    output_padding: int = 0
    bias: bool = True

    def check(self, name: str) -> None:
        positive(name, out=self.out, kernel=self.kernel, stride=self.stride)
        if self.padding == "same":
            if self.output_padding != 0:
                raise SpecError(
                    name, "padding 'same' computes output_padding itself", "remove 'output_padding'"
                )
            if self.kernel < self.stride:
                raise SpecError(
                    name,
                    "padding 'same' needs kernel >= stride",
                    "use a larger kernel or integer padding",
                )
            if self.stride == 1 and self.kernel % 2 == 0:
                # an odd kernel - stride needs output_padding 1, which must stay below the stride
                raise SpecError(
                    name,
                    "padding 'same' with stride 1 needs an odd kernel",
                    "use an odd kernel or integer padding",
                )
        else:
            non_negative(name, padding=int(self.padding), output_padding=self.output_padding)
        if self.output_padding >= self.stride:
            raise SpecError(
                name,
                f"output_padding {self.output_padding} must be smaller than stride {self.stride}",
                "lower output_padding",
            )

    def pads(self) -> tuple[int, int]:
        """(padding, output_padding). 'same' solves (n-1)s - 2p + k + op = n*s for p, op >= 0.

        Of the (n-1)s + k pixels a side that the transposed convolution scatters to, 'same' cuts
        p = ceil((k-s)/2) before and p - op = floor((k-s)/2) after (k5 s2: 2 before, 1 after), as
        PyTorch's and Jittor's layers can. TensorFlow's SAME, the adjoint of its forward SAME
        convolution, cuts floor before and ceil after (k5 s2: 1 before, 2 after): the same size,
        shifted by one pixel when k - s is odd (tests/test_references.py measures both).
        """
        if self.padding != "same":
            return int(self.padding), self.output_padding
        excess = self.kernel - self.stride
        padding = (excess + 1) // 2
        return padding, 2 * padding - excess

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(
            name,
            "conv_transpose2d",
            shape,
            (3,),
            "add a 'reshape' layer to (channels, height, width) before it",
        )
        padding, output_padding = self.pads()
        _, height, width = shape
        sizes = [
            (size - 1) * self.stride - 2 * padding + self.kernel + output_padding
            for size in (height, width)
        ]
        if min(sizes) < 1:
            raise SpecError(
                name, f"padding {padding} leaves no output for input {shape}", "use less padding"
            )
        return (self.out, sizes[0], sizes[1])

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {
            "weight": (inputs[0].shape[0], self.out, self.kernel, self.kernel)
        }
        if self.bias:
            params["bias"] = (self.out,)
        return params

    def flops(self, info: LayerInfo) -> int:
        # a transposed convolution multiplies the whole kernel at every input position
        return _positions_flops(info.parameters["weight"], info.in_shape[1:])

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        padding, output_padding = self.pads()
        return {
            "in_channels": info.in_shape[0],
            "out_channels": self.out,
            "kernel_size": self.kernel,
            "stride": self.stride,
            "padding": padding,
            "output_padding": output_padding,
            "bias": self.bias,
        }

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        plain_convolution(module)
        return {
            "out": module.out_channels,
            "kernel": square(module.kernel_size, "kernel_size"),
            "stride": square(module.stride, "stride"),
            "padding": square(module.padding, "padding"),
            "output_padding": square(module.output_padding, "output_padding"),
            "bias": module.bias is not None,
        }
