"""PyTorch functions and tensor methods that make no layer of their own: views that keep each
sample's values (a reshape or flatten layer only where the shape changes), dtype conversions and
shape queries. The functions that compute a layer kind are read by that kind's definition
(gx.importer.kinds).

Each rule gets the traced node's arguments with every traced value already translated (a
``Tensor``, a ``OneHotCode``, a ``BatchSize`` or ``Sizes``) and returns the node's value.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import fx

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
from gx.layers.base import argument
from gx.layers.importing import Context, OneHotCode, Tensor, Unsupported, float_shape

Rule = Callable[[Context, fx.Node, tuple, dict], Any]


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
    return reshaped(context, node, args[0], view_target(float_shape(args[0]), sizes))


def _flatten(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    start = argument(args, kwargs, 1, "start_dim", 0)
    end = argument(args, kwargs, 2, "end_dim", -1)
    return reshaped(context, node, args[0], flatten_target(float_shape(args[0]), start, end))


def _unsqueeze(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    axis = argument(args, kwargs, 1, "dim", None)
    return reshaped(context, node, args[0], unsqueeze_target(float_shape(args[0]), axis))


def _squeeze(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    axes = argument(args, kwargs, 1, "dim", None)
    axes = [] if axes is None else list(axes) if isinstance(axes, Sequence) else [axes]
    return reshaped(context, node, args[0], squeeze_target(float_shape(args[0]), axes))


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
    sizes = Sizes(float_shape(args[0]))
    axis = argument(args, kwargs, 1, "dim", None)
    return sizes if axis is None else sizes.item(axis)


def _getattr(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    if args[1] != "shape":
        raise Unsupported(f"reads the attribute '{args[1]}' of a traced tensor")
    return Sizes(float_shape(args[0]))


def _getitem(context: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    container, index = args
    if isinstance(container, Sizes):
        return container.item(index)
    return reshaped(context, node, container, index_target(float_shape(container), index))


FUNCTION_RULES: dict[Any, Rule] = {
    torch.reshape: _view,
    torch.flatten: _flatten,
    torch.unsqueeze: _unsqueeze,
    torch.squeeze: _squeeze,
    getattr: _getattr,
    operator.getitem: _getitem,
}

METHOD_RULES: dict[str, Rule] = {
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
