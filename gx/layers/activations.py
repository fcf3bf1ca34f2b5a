"""Activations: elementwise, and the softmax over features or channels. Each computes the same
forward and backward on both backends (docs/semantics.md: tanh's and sigmoid's backward, no
clamping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.layers.base import Layer, ParityCase, Shape, argument, need_rank
from gx.layers.importing import Context, Unsupported, float_shape

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

IMAGE = {"x": [2, 3, 3]}


@dataclass(frozen=True)
class Elementwise(Layer):
    """An activation: the input's shape, no parameters, no FLOPs counted."""

    def flops(self, info: LayerInfo) -> int:
        return 0


@dataclass(frozen=True)
class ReLU(Elementwise):
    kind: ClassVar[str] = "relu"
    framework_classes = {"torch": "torch.nn.ReLU"}
    torch_modules = ("torch.nn.ReLU",)
    torch_functions = ("torch.nn.functional.relu", "torch.relu", "Tensor.relu")
    parity_cases = {"relu": ParityCase(IMAGE)}


@dataclass(frozen=True)
class LeakyReLU(Elementwise):
    kind: ClassVar[str] = "leaky_relu"
    framework_classes = {"torch": "torch.nn.LeakyReLU"}
    torch_modules = ("torch.nn.LeakyReLU",)
    torch_functions = ("torch.nn.functional.leaky_relu",)
    parity_cases = {"leaky_relu": ParityCase(IMAGE, {"slope": 0.2})}
    slope: float = 0.01

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"negative_slope": self.slope}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return {"slope": float(module.negative_slope)}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        slope = float(argument(args, kwargs, 1, "negative_slope", 0.01))
        return context.layer(node, cls.kind, [context.tensor(args[0])], slope=slope)


@dataclass(frozen=True)
class Tanh(Elementwise):
    """gx's tanh backward is g * (1 - y^2): finite for every input (Jittor's default is not)."""

    kind: ClassVar[str] = "tanh"
    framework_classes = {"torch": "torch.nn.Tanh"}
    torch_modules = ("torch.nn.Tanh",)
    torch_functions = ("torch.nn.functional.tanh", "torch.tanh", "Tensor.tanh")
    parity_cases = {"tanh": ParityCase(IMAGE, scale=8.0)}  # the saturated tails too


@dataclass(frozen=True)
class Sigmoid(Elementwise):
    """1 / (1 + exp(-x)) without clamping the input; backward g * (1 - y) * y."""

    kind: ClassVar[str] = "sigmoid"
    framework_classes = {"torch": "torch.nn.Sigmoid"}
    torch_modules = ("torch.nn.Sigmoid",)
    torch_functions = ("torch.nn.functional.sigmoid", "torch.sigmoid", "Tensor.sigmoid")
    parity_cases = {"sigmoid": ParityCase(IMAGE, scale=8.0)}


def _softmax_axis(dim: Any, rank: int | None) -> None:
    """Refuse a softmax over any axis but the first after the batch: dim 1, or 1 - ``rank``
    counted from the end where the rank is known (-1 of (N, C)). None, PyTorch's implicit
    choice, is dim 1 for the features and images gx's softmax takes."""
    if dim is None or dim == 1 or (rank is not None and dim % rank == 1):
        return
    raise Unsupported(
        f"normalizes over dim {dim}; gx's softmax normalizes the first axis after the batch "
        "(features, or channels at each pixel): dim=1"
    )


@dataclass(frozen=True)
class Softmax(Elementwise):
    """exp(x) / sum(exp(x)) over the first per-sample axis: the features of (C,), or the
    channels of (C, H, W) at each pixel. Computed as exp(x - max) / sum, so large inputs do not
    overflow; the backward is y * (g - sum(g * y)) (PyTorch's; Jittor's own autograd of the same
    forward agrees within float32 rounding)."""

    kind: ClassVar[str] = "softmax"
    framework_classes = {"torch": "torch.nn.Softmax"}
    torch_modules = ("torch.nn.Softmax",)
    torch_functions = ("torch.nn.functional.softmax", "torch.softmax", "Tensor.softmax")
    parity_cases = {
        "softmax_features": ParityCase({"x": [6]}, scale=4.0),
        "softmax_channels": ParityCase({"x": [4, 3, 3]}, scale=4.0),
    }

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "softmax", shape, (1, 3), "give it features (C,) or images (C, H, W)")
        return shape

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"dim": 1}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        _softmax_axis(module.dim, None)
        return {}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        if kwargs.get("dtype") is not None:
            raise Unsupported(f"converts to {kwargs['dtype']}; gx's softmax keeps the input's type")
        _softmax_axis(argument(args, kwargs, 1, "dim", None), len(float_shape(args[0])) + 1)
        return context.layer(node, cls.kind, [context.tensor(args[0])])
