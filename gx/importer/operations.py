"""PyTorch functions and tensor methods as gx layers (or as no layer at all: views that keep
each sample's values, dtype conversions, shape queries).

Each rule gets the traced node's arguments with every traced value already translated (a
``Tensor``, a ``OneHotCode``, a ``BatchSize`` or ``Sizes``) and returns the node's value.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F
from torch import fx

from gx.importer.builder import Tensor, Unsupported
from gx.importer.reshaping import (
    Shape,
    Sizes,
    expand_target,
    flatten_target,
    index_target,
    squeeze_target,
    unsqueeze_target,
    view_target,
)


@dataclass(frozen=True)
class OneHotCode:
    """The one-hot code of a label input, not yet a layer: ``F.one_hot(label, C).float()``,
    perhaps viewed as (C, 1, 1) and expanded to (C, H, W). gx computes it from the labels with
    one layer, made where a layer first reads it (one_hot for (C,), label_map for (C, H, W))."""

    label: Tensor
    shape: Shape


class Context(Protocol):
    """What the rules need from the walk over the graph (gx.importer.translate)."""

    def layer(self, node: fx.Node, kind: str, sources: list[Tensor], **arguments: Any) -> Tensor:
        """A new layer computing ``node``, named after it."""

    def tensor(self, value: Any) -> Tensor:
        """``value`` as a spec value (a one-hot code becomes its layer here)."""

    def dropout_in_eval(self, node: fx.Node) -> bool:
        """Whether this functional dropout is still active when the module is in eval mode."""


Rule = Callable[[Context, fx.Node, tuple, dict], Any]


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _shape(value: Any) -> Shape:
    if isinstance(value, OneHotCode):
        return value.shape
    if isinstance(value, Tensor) and not value.value.is_label:
        return value.value.shape
    raise Unsupported("needs a float tensor here")


def reshaped(context: Context, node: fx.Node, value: Any, target: Shape) -> Any:
    """``value`` with each sample viewed as ``target``: a layer only where the shape changes."""
    if isinstance(value, OneHotCode):
        return OneHotCode(value.label, target)
    tensor = context.tensor(value)
    if target == tensor.value.shape:
        return tensor
    if len(target) == 1:
        return context.layer(node, "flatten", [tensor])
    return context.layer(node, "reshape", [tensor], shape=target)


def _activation(kind: str) -> Rule:
    def rule(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        return context.layer(node, kind, [context.tensor(args[0])])

    return rule


def _leaky_relu(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    slope = _argument(args, kwargs, 1, "negative_slope", 0.01)
    return context.layer(node, "leaky_relu", [context.tensor(args[0])], slope=float(slope))


def _dropout(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    p = float(_argument(args, kwargs, 1, "p", 0.5))
    training = _argument(args, kwargs, 2, "training", True)
    if context.dropout_in_eval(node):
        raise Unsupported(
            "stays active in eval mode; gx's dropout is active exactly in training mode: "
            "pass training=self.training, or use nn.Dropout"
        )
    if not training:
        return context.tensor(args[0])  # off in training mode too: it computes nothing
    return context.layer(node, "dropout", [context.tensor(args[0])], p=p)


def _cat(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    parts = [context.tensor(part) for part in _argument(args, kwargs, 0, "tensors", [])]
    dim = _argument(args, kwargs, 1, "dim", 0)
    for part in parts:
        if part.value.is_label:
            raise Unsupported(
                f"joins the integer labels '{part.name}'; turn them into numbers first "
                "(F.one_hot(labels, classes).float() or an nn.Embedding)"
            )
    rank = len(parts[0].value.shape)
    if dim not in (1, -rank):
        raise Unsupported(
            f"joins along dim {dim}; gx's concat joins channels or features, the first axis "
            "after the batch: dim=1"
        )
    if len(parts) == 1:
        return parts[0]
    return context.layer(node, "concat", parts)


def _one_hot(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    labels = args[0]
    if not (isinstance(labels, Tensor) and labels.value.is_label):
        raise Unsupported("needs a label input declared as class:N, e.g. --input label=class:10")
    classes = _argument(args, kwargs, 1, "num_classes", -1)
    if classes != labels.value.classes:
        raise Unsupported(
            f"makes {classes} classes of '{labels.name}', declared with "
            f"{labels.value.classes}; pass num_classes={labels.value.classes} (or declare "
            f"--input {labels.name}=class:{classes})"
        )
    return OneHotCode(labels, (classes,))


def _converted(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """dtype and device conversions: gx's values already have the backend's float dtype and
    device, and labels stay integers."""
    value = args[0]
    dtypes = [arg for arg in (*args[1:], *kwargs.values()) if isinstance(arg, torch.dtype)]
    to_integers = node.target == "long" or any(not dtype.is_floating_point for dtype in dtypes)
    if to_integers and not (isinstance(value, Tensor) and value.value.is_label):
        raise Unsupported("turns floats into integers, which no gx layer does")
    return value


def _view(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    sizes = args[1:] or (kwargs.get("shape") or kwargs.get("size") or (),)
    return reshaped(context, node, args[0], view_target(_shape(args[0]), sizes))


def _flatten(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    start = _argument(args, kwargs, 1, "start_dim", 0)
    end = _argument(args, kwargs, 2, "end_dim", -1)
    return reshaped(context, node, args[0], flatten_target(_shape(args[0]), start, end))


def _unsqueeze(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    axis = _argument(args, kwargs, 1, "dim", None)
    return reshaped(context, node, args[0], unsqueeze_target(_shape(args[0]), axis))


def _squeeze(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    axes = _argument(args, kwargs, 1, "dim", None)
    axes = [] if axes is None else list(axes) if isinstance(axes, Sequence) else [axes]
    return reshaped(context, node, args[0], squeeze_target(_shape(args[0]), axes))


def _broadcast(repeat: bool) -> Rule:
    def rule(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        code = args[0]
        if not isinstance(code, OneHotCode):
            raise Unsupported(
                "copies a tensor's values across an axis; gx does that only for the one-hot "
                "code of labels (a label map)"
            )
        sizes = args[1:] or (kwargs.get("size") or kwargs.get("repeats") or (),)
        return OneHotCode(code.label, expand_target(code.shape, sizes, repeat))

    return rule


def _size(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    sizes = Sizes(_shape(args[0]))
    axis = _argument(args, kwargs, 1, "dim", None)
    return sizes if axis is None else sizes.item(axis)


def _getattr(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    if args[1] != "shape":
        raise Unsupported(f"reads the attribute '{args[1]}' of a traced tensor")
    return Sizes(_shape(args[0]))


def _getitem(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    container, index = args
    if isinstance(container, Sizes):
        return container.item(index)
    return reshaped(context, node, container, index_target(_shape(container), index))


FUNCTION_RULES: dict[Any, Rule] = {
    F.relu: _activation("relu"),
    torch.relu: _activation("relu"),
    F.leaky_relu: _leaky_relu,
    torch.tanh: _activation("tanh"),
    F.tanh: _activation("tanh"),
    torch.sigmoid: _activation("sigmoid"),
    F.sigmoid: _activation("sigmoid"),
    F.dropout: _dropout,
    torch.cat: _cat,
    torch.concat: _cat,
    F.one_hot: _one_hot,
    torch.reshape: _view,
    torch.flatten: _flatten,
    torch.unsqueeze: _unsqueeze,
    torch.squeeze: _squeeze,
    getattr: _getattr,
    operator.getitem: _getitem,
}

METHOD_RULES: dict[str, Rule] = {
    "relu": _activation("relu"),
    "tanh": _activation("tanh"),
    "sigmoid": _activation("sigmoid"),
    "view": _view,
    "reshape": _view,
    "flatten": _flatten,
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    "expand": _broadcast(repeat=False),
    "repeat": _broadcast(repeat=True),
    "size": _size,
    "float": _converted,
    "long": _converted,
    "to": _converted,
    "type": _converted,
    "contiguous": _converted,
}
