"""Layers that move values without arithmetic of their own (flatten, reshape, concat) or join
branches elementwise (add, multiply)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, Value, argument, positive
from gx.layers.importing import Context, OneHotCode, Tensor, Unsupported
from gx.values import is_number

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource


@dataclass(frozen=True)
class Movement(Layer):
    """A layer that only moves values: no parameters, no FLOPs."""

    def flops(self, info: LayerInfo) -> int:
        return 0


@dataclass(frozen=True)
class Flatten(Movement):
    kind: ClassVar[str] = "flatten"
    rearranges: ClassVar[bool] = True
    framework_classes = {"torch": "torch.nn.Flatten"}
    torch_modules = ("torch.nn.Flatten",)
    parity_cases = {"flatten": ParityCase({"x": [2, 3, 3]})}

    def output_shape(self, name: str, shape: Shape) -> Shape:
        return (math.prod(shape),)

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if module.start_dim != 1 or module.end_dim != -1:
            raise Unsupported(
                f"flattens dims {module.start_dim}..{module.end_dim}; gx flattens each sample "
                "whole: nn.Flatten() (start_dim=1, end_dim=-1)"
            )
        return {}


@dataclass(frozen=True)
class Reshape(Movement):
    kind: ClassVar[str] = "reshape"
    rearranges: ClassVar[bool] = True
    imported_by = "Tensor.view, Tensor.reshape and friends (gx.importer.reshaping)"
    parity_cases = {"reshape": ParityCase({"x": [12]}, {"shape": [3, 2, 2]})}
    shape: tuple[int, ...]

    def check(self, name: str) -> None:
        positive(name, **{f"shape[{i}]": d for i, d in enumerate(self.shape)})

    def output_shape(self, name: str, shape: Shape) -> Shape:
        size_in, size_out = math.prod(shape), math.prod(self.shape)
        if size_in != size_out:
            raise SpecError(
                name,
                f"cannot reshape {shape} ({size_in} values) to {self.shape} ({size_out} values)",
                "make the target shape hold the same number of values",
            )
        return tuple(self.shape)

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"shape": self.shape}


@dataclass(frozen=True)
class Concat(Movement):
    """Joins its inputs along the first per-sample axis (features or channels)."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int] = 0
    torch_functions = ("torch.cat", "torch.concat")
    parity_cases = {
        "concat_channels": ParityCase({"a": [2, 3, 3], "b": [3, 3, 3]}, reads=["a", "b"]),
        "concat_features": ParityCase({"a": [4], "b": [3]}, reads=["a", "b"]),
    }

    def output(self, name: str, inputs: list[Value]) -> Value:
        first = inputs[0].shape
        for value in inputs:
            if value.is_label:
                raise SpecError(
                    name,
                    "concat got integer labels",
                    "pass them through one_hot, label_map or embedding first",
                )
            if len(value.shape) != len(first) or value.shape[1:] != first[1:]:
                shapes = ", ".join(v.describe() for v in inputs)
                raise SpecError(
                    name,
                    f"concat needs equal sizes after the first axis, got {shapes}",
                    "resize the branches so only their channel counts differ",
                )
        return Value((sum(v.shape[0] for v in inputs),) + first[1:])

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        parts = [context.tensor(part) for part in argument(args, kwargs, 0, "tensors", [])]
        dim = argument(args, kwargs, 1, "dim", 0)
        for part in parts:
            if part.value.is_label:
                raise Unsupported(
                    f"joins the integer labels '{part.name}'; turn them into numbers first "
                    "(F.one_hot(labels, classes).float() or an nn.Embedding)"
                )
        rank = len(parts[0].value.shape)
        if dim not in (1, -rank):
            raise Unsupported(
                f"joins along dim {dim}; gx's concat joins channels or features, the first "
                "axis after the batch: dim=1"
            )
        if len(parts) == 1:
            return parts[0]
        return context.layer(node, cls.kind, parts)


@dataclass(frozen=True)
class Add(Layer):
    """The elementwise sum of two or more inputs of one shape: two scores of a head, or a
    residual block's x + shortcut(x)."""

    kind: ClassVar[str] = "add"
    arity: ClassVar[int] = 0
    torch_functions = ("operator.add", "torch.add", "Tensor.add")
    parity_cases = {
        "add": ParityCase({"a": [2, 3], "b": [2, 3], "c": [2, 3]}, reads=["a", "b", "c"]),
    }

    def output(self, name: str, inputs: list[Value]) -> Value:
        if any(value.shape != inputs[0].shape for value in inputs):
            shapes = ", ".join(value.describe() for value in inputs)
            raise SpecError(name, f"add needs inputs of one shape, got {shapes}", "reshape them")
        return Value(inputs[0].shape)

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        if kwargs.get("alpha", 1) != 1:
            raise Unsupported(
                "scales its second term (alpha); gx's add sums its inputs as they are"
            )
        terms = [args[0], argument(args, kwargs, 1, "other", None)]
        if not all(isinstance(term, (Tensor, OneHotCode)) for term in terms):
            raise Unsupported(
                "adds a constant to a tensor; gx's add sums tensors of one shape: learn the "
                "constant as a bias (e.g. an nn.Linear's)"
            )
        return context.layer(node, cls.kind, [context.tensor(term) for term in terms])


def _broadcast(first: Value, second: Value) -> Shape | None:
    """The shape of first * second under PyTorch's broadcasting of per-sample shapes of one
    rank (the batch axis stays first): each axis equal, or 1 in one of them. None if they
    do not broadcast."""
    if len(first.shape) != len(second.shape):
        return None
    if any(a != b and 1 not in (a, b) for a, b in zip(first.shape, second.shape)):
        return None
    return tuple(max(a, b) for a, b in zip(first.shape, second.shape))


@dataclass(frozen=True)
class Multiply(Layer):
    """The elementwise product of two inputs: a label embedding times the noise (AC-GAN
    generators), or a per-channel gain (C, 1, 1) times images (C, H, W).

    The inputs have per-sample shapes of one rank, each axis equal or 1 in one of them; an axis
    of 1 is repeated along the other's, as PyTorch broadcasts (N, C, 1, 1) * (N, C, H, W).
    """

    kind: ClassVar[str] = "multiply"
    arity: ClassVar[int] = 2
    torch_functions = ("torch.mul", "operator.mul", "Tensor.mul")
    parity_cases = {
        "multiply": ParityCase({"a": [2, 3, 3], "b": [2, 3, 3]}, reads=["a", "b"]),
        "multiply_vectors": ParityCase({"a": [6], "b": [6]}, reads=["a", "b"]),
        "multiply_per_channel": ParityCase({"a": [2, 1, 1], "b": [2, 3, 3]}, reads=["a", "b"]),
    }

    def output(self, name: str, inputs: list[Value]) -> Value:
        first, second = inputs
        shape = _broadcast(first, second)
        if shape is None:
            raise SpecError(
                name,
                f"multiply needs shapes of one rank whose axes are equal or 1, got "
                f"{first.describe()} and {second.describe()}",
                "reshape a per-channel vector (C,) to (C, 1, 1) to scale images (C, H, W)",
            )
        return Value(shape)

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        factors = [args[0], argument(args, kwargs, 1, "other", None)]
        if all(is_number(factor) for factor in factors):
            return factors[0] * factors[1]  # shape arithmetic, such as x.size(1) * 4
        if not all(isinstance(factor, (Tensor, OneHotCode)) for factor in factors):
            raise Unsupported(
                "multiplies a tensor by a constant; gx's multiply takes two tensors: fold the "
                "factor into the weights of the layer before it"
            )
        return context.layer(node, cls.kind, [context.tensor(factor) for factor in factors])
