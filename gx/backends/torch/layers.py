"""One native torch module per spec layer kind.

PyTorch's own layers already compute gx's definitions (batch norm with unbiased running
variance, tanh backward g*(1-y^2), unclamped sigmoid), so most kinds map straight onto them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gx.backends.base import MaskSource, native_layer
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


def _batch_norm(num_features: int, eps: float, momentum: float, images: bool) -> nn.Module:
    norm = nn.BatchNorm2d if images else nn.BatchNorm1d
    return norm(num_features, eps=eps, momentum=momentum)


LAYER_CLASSES: dict[str, Callable[..., nn.Module]] = {
    "linear": nn.Linear, "conv2d": nn.Conv2d, "conv_transpose2d": nn.ConvTranspose2d,
    "batch_norm": _batch_norm, "embedding": nn.Embedding, "one_hot": OneHot, "label_map": OneHot,
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "dropout": Dropout, "flatten": nn.Flatten, "reshape": Reshape, "concat": Concat,
}


def make_layer(info: LayerInfo, masks: MaskSource, dtype: torch.dtype) -> nn.Module:
    extra: dict[str, object] = {}
    if info.kind in ("one_hot", "label_map"):
        extra["dtype"] = dtype  # no parameters to carry it: the labels become this type
    elif info.kind == "batch_norm":
        extra["images"] = len(info.in_shape) > 1
    return native_layer("torch", LAYER_CLASSES, info, masks, **extra)
