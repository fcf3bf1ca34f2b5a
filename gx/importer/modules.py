"""PyTorch's layer modules as gx layers: each rule reads a module's settings and returns the
gx layer kind and arguments that compute exactly the same, or says why there is none."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from gx.importer.builder import Unsupported

LayerArguments = tuple[str, dict[str, Any]]


def _square(value: Any, setting: str) -> int:
    """One int from PyTorch's int-or-pair settings; gx's kernels, strides and paddings are
    square."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(values)) != 1:
        raise Unsupported(
            f"has {setting} {values}; gx's convolutions take one {setting} for height and "
            "width: make them equal"
        )
    return int(values[0])


def _plain_convolution(module: nn.modules.conv._ConvNd) -> None:
    if tuple(module.dilation) != (1, 1):
        raise Unsupported(f"has dilation {tuple(module.dilation)}; gx convolutions use 1")
    if module.groups != 1:
        raise Unsupported(f"has groups={module.groups}; gx convolutions use 1")
    if module.padding_mode != "zeros":
        raise Unsupported(f"pads with '{module.padding_mode}'; gx convolutions pad with zeros")


def _linear(module: nn.Linear) -> LayerArguments:
    return "linear", {"out": module.out_features, "bias": module.bias is not None}


def _conv2d(module: nn.Conv2d) -> LayerArguments:
    _plain_convolution(module)
    kernel = _square(module.kernel_size, "kernel_size")
    padding: int | str
    if module.padding == "valid":
        padding = 0
    elif module.padding == "same":
        if kernel % 2 == 0:
            # PyTorch pads an even kernel more on one side; gx's 'same' needs an odd one
            raise Unsupported("has padding='same' with an even kernel; give integer padding")
        padding = "same"
    else:
        padding = _square(module.padding, "padding")
    return "conv2d", {
        "out": module.out_channels,
        "kernel": kernel,
        "stride": _square(module.stride, "stride"),
        "padding": padding,
        "bias": module.bias is not None,
    }


def _conv_transpose2d(module: nn.ConvTranspose2d) -> LayerArguments:
    _plain_convolution(module)
    return "conv_transpose2d", {
        "out": module.out_channels,
        "kernel": _square(module.kernel_size, "kernel_size"),
        "stride": _square(module.stride, "stride"),
        "padding": _square(module.padding, "padding"),
        "output_padding": _square(module.output_padding, "output_padding"),
        "bias": module.bias is not None,
    }


def _batch_norm(module: nn.modules.batchnorm._BatchNorm) -> LayerArguments:
    if not module.affine:
        raise Unsupported("has affine=False; gx's batch_norm always learns a scale and shift")
    if not module.track_running_stats:
        raise Unsupported(
            "has track_running_stats=False; gx's batch_norm keeps running statistics for eval mode"
        )
    if module.momentum is None:
        raise Unsupported(
            "has momentum=None (a cumulative average); gx's batch_norm takes a number, "
            "e.g. momentum=0.1"
        )
    return "batch_norm", {"eps": float(module.eps), "momentum": float(module.momentum)}


def _embedding(module: nn.Embedding) -> LayerArguments:
    if module.padding_idx is not None or module.max_norm is not None:
        raise Unsupported(
            "has padding_idx or max_norm; gx's embedding is a plain lookup table: drop them"
        )
    if module.scale_grad_by_freq:
        raise Unsupported("has scale_grad_by_freq=True; gx's embedding does not scale gradients")
    return "embedding", {"dim": module.embedding_dim}


def _flatten(module: nn.Flatten) -> LayerArguments:
    if module.start_dim != 1 or module.end_dim != -1:
        raise Unsupported(
            f"flattens dims {module.start_dim}..{module.end_dim}; gx flattens each sample "
            "whole: nn.Flatten() (start_dim=1, end_dim=-1)"
        )
    return "flatten", {}


def _leaky_relu(module: nn.LeakyReLU) -> LayerArguments:
    return "leaky_relu", {"slope": float(module.negative_slope)}


def _dropout(module: nn.Dropout) -> LayerArguments:
    # nn.Dropout is active exactly in training mode, as gx's dropout is
    return "dropout", {"p": float(module.p)}


def _no_arguments(kind: str) -> Callable[[nn.Module], LayerArguments]:
    return lambda module: (kind, {})


# Exact types: a subclass may override forward, and fx traces through it instead.
MODULE_RULES: dict[type, Callable[[Any], LayerArguments]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.ConvTranspose2d: _conv_transpose2d,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.Embedding: _embedding,
    nn.ReLU: _no_arguments("relu"),
    nn.LeakyReLU: _leaky_relu,
    nn.Tanh: _no_arguments("tanh"),
    nn.Sigmoid: _no_arguments("sigmoid"),
    nn.Dropout: _dropout,
    nn.Flatten: _flatten,
}
SUPPORTED_MODULES = ", ".join(f"nn.{cls.__name__}" for cls in MODULE_RULES)


def module_layer(module: nn.Module) -> LayerArguments:
    """The gx layer kind and arguments of a leaf module."""
    rule = MODULE_RULES.get(type(module))
    if rule is None:
        raise Unsupported(f"has no gx layer kind; gx imports {SUPPORTED_MODULES} and nn.Identity")
    return rule(module)
