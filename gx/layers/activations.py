"""Elementwise activations. Each computes the same forward and backward on both backends
(docs/semantics.md: tanh's and sigmoid's backward, no clamping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.layers.base import Layer, ParityCase, argument
from gx.layers.importing import Context

if TYPE_CHECKING:
    from gx.spec.graph import LayerInfo
    from gx.spec.masks import MaskSource

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
