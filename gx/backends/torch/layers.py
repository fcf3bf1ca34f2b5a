"""One native torch module per spec layer kind.

PyTorch's own layers already compute gx's definitions (batch norm with unbiased running
variance, tanh backward g*(1-y^2), unclamped sigmoid), so most kinds map straight onto them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gx.backends.base import MaskSource
from gx.spec import LayerInfo
from gx.spec.layers import Shape


class OneHot(nn.Module):
    def __init__(self, classes: int, dtype: torch.dtype, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.classes, self.dtype, self.size = classes, dtype, size

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        vectors = F.one_hot(labels, self.classes).to(self.dtype)
        if self.size is None:
            return vectors
        return vectors[:, :, None, None].expand(-1, -1, *self.size)


class Dropout(nn.Module):
    """x * mask in training mode, with the mask from gx's shared numpy RNG."""

    def __init__(self, p: float, masks: MaskSource) -> None:
        super().__init__()
        self.p, self.masks = p, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.from_numpy(self.masks.mask(x.shape, self.p))
        return x * mask.to(device=x.device, dtype=x.dtype)


class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Concat(nn.Module):
    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return torch.cat(parts, dim=1)


def make_layer(info: LayerInfo, masks: MaskSource, dtype: torch.dtype) -> Callable[..., torch.Tensor]:
    layer, kind, in_shape = info.layer, info.kind, info.in_shape
    if kind == "linear":
        return nn.Linear(in_shape[0], layer.out, bias=layer.bias)
    if kind == "conv2d":
        return nn.Conv2d(in_shape[0], layer.out, layer.kernel, layer.stride, layer.pad(),
                         bias=layer.bias)
    if kind == "conv_transpose2d":
        padding, output_padding = layer.pads()
        return nn.ConvTranspose2d(in_shape[0], layer.out, layer.kernel, layer.stride, padding,
                                  output_padding, bias=layer.bias)
    if kind == "batch_norm":
        norm = nn.BatchNorm1d if len(in_shape) == 1 else nn.BatchNorm2d
        return norm(in_shape[0], eps=layer.eps, momentum=layer.momentum)
    if kind == "embedding":
        return nn.Embedding(info.classes, layer.dim)
    if kind == "one_hot":
        return OneHot(info.classes, dtype)
    if kind == "label_map":
        return OneHot(info.classes, dtype, layer.size)
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(layer.slope)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "dropout":
        return Dropout(layer.p, masks)
    if kind == "flatten":
        return nn.Flatten()
    if kind == "reshape":
        return Reshape(layer.shape)
    if kind == "concat":
        return Concat()
    raise NotImplementedError(f"torch backend has no layer kind '{kind}'")
