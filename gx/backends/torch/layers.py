"""gx's own torch modules, for the layer kinds PyTorch has no class for.

PyTorch's own layers already compute gx's definitions (batch norm with unbiased running
variance, tanh backward g*(1-y^2), unclamped sigmoid), so most kinds map straight onto them:
their definitions in gx.layers name the class (``framework_classes``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gx.backends.base import LayerClasses
from gx.layers import Shape
from gx.spec import LayerInfo, MaskSource

LAYER_CLASSES = LayerClasses("torch")


@LAYER_CLASSES.register("one_hot", "label_map")
class OneHot(nn.Module):
    def __init__(
        self, classes: int, dtype: torch.dtype, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.classes, self.dtype, self.size = classes, dtype, size

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        vectors = F.one_hot(labels, self.classes).to(self.dtype)
        if self.size is None:
            return vectors
        return vectors[:, :, None, None].expand(-1, -1, *self.size)


@LAYER_CLASSES.register("dropout")
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


@LAYER_CLASSES.register("reshape")
class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


@LAYER_CLASSES.register("concat")
class Concat(nn.Module):
    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return torch.cat(parts, dim=1)


@LAYER_CLASSES.register("add")
class Add(nn.Module):
    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


@LAYER_CLASSES.register("projection")
class Projection(nn.Module):
    """<weight[label], features> per sample, shape (N, 1)."""

    def __init__(self, classes: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, features))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # F.embedding, not weight[labels]: indexing's backward accumulates the class vectors'
        # gradients in another order under torch.use_deterministic_algorithms (gx parity's strict
        # math), so a run and its parity check would differ in the last bits
        return (F.embedding(labels, self.weight) * features).sum(1, keepdim=True)


def _normalize(vector: torch.Tensor) -> torch.Tensor:
    return vector / torch.clamp(torch.linalg.vector_norm(vector), min=1e-12)


def _spectrally_normalized(weight: torch.Tensor, u: torch.Tensor, training: bool) -> torch.Tensor:
    """weight / sigma, gx's spectral normalization (gx.layers.dense): one power iteration per
    training forward pass, stored in ``u``."""
    matrix = weight.reshape(weight.shape[0], -1)
    with torch.no_grad():
        v = _normalize(matrix.t() @ u)
        if training:
            u.copy_(_normalize(matrix @ v))
        # a copy: the next forward pass updates u in place before this one's backward runs
        u = u.clone()
    sigma = torch.dot(u, matrix @ v)
    return weight / sigma


class SpectralLinear(nn.Linear):
    sn_u: torch.Tensor

    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("sn_u", torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _spectrally_normalized(self.weight, self.sn_u, self.training)
        return F.linear(x, weight, self.bias)


class SpectralConv2d(nn.Conv2d):
    sn_u: torch.Tensor

    def __init__(self, out_channels: int, **arguments: object) -> None:
        super().__init__(out_channels=out_channels, **arguments)  # type: ignore[arg-type]
        self.register_buffer("sn_u", torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _spectrally_normalized(self.weight, self.sn_u, self.training)
        return self._conv_forward(x, weight, self.bias)


@LAYER_CLASSES.register("linear")
def _linear(spectral_norm: bool = False, **arguments: object) -> nn.Module:
    return (SpectralLinear if spectral_norm else nn.Linear)(**arguments)  # type: ignore[arg-type]


@LAYER_CLASSES.register("conv2d")
def _conv2d(spectral_norm: bool = False, **arguments: object) -> nn.Module:
    return (SpectralConv2d if spectral_norm else nn.Conv2d)(**arguments)  # type: ignore[arg-type]


@LAYER_CLASSES.register("batch_norm")
def _batch_norm(
    num_features: int, eps: float, momentum: float, images: bool, synced: bool = False
) -> nn.Module:
    if synced:
        return SyncBatchNorm(num_features, eps=eps, momentum=momentum)
    norm = nn.BatchNorm2d if images else nn.BatchNorm1d
    return norm(num_features, eps=eps, momentum=momentum)


class SyncBatchNorm(nn.BatchNorm1d):
    """Batch norm over the global batch of a run of several processes (torch.distributed).

    torch.nn.SyncBatchNorm refuses CPU tensors, so this builds it from torch.distributed's
    differentiable all-reduce: the per-channel sums of every process are added, and autograd
    carries the gradient back through the same all-reduce. Sums over images accumulate in
    float64, as PyTorch's CPU batch norm does; over (N, C) inputs in float32. Same parameters,
    buffers and eval-mode computation as nn.BatchNorm1d/2d, so checkpoints are interchangeable.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        pass  # (N, C) and (N, C, H, W) alike

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        # gx's spec always gives momentum, and these buffers exist (track_running_stats)
        assert self.momentum is not None
        assert self.running_mean is not None and self.running_var is not None
        centered, variance = _global_batch_statistics(
            x, self.running_mean, self.running_var, self.momentum
        )
        shape = [1, -1] + [1] * (x.ndim - 2)
        scale = torch.rsqrt(variance + self.eps) * self.weight
        return centered * scale.reshape(shape) + self.bias.reshape(shape)


def _global_batch_statistics(
    x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, momentum: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x centred on the global batch mean, the global biased variance per channel) over every
    process of the run; the running statistics move as batch norm moves them."""
    from torch.distributed.nn.functional import all_reduce

    axes = [0, *range(2, x.ndim)]
    shape = [1, -1] + [1] * (x.ndim - 2)
    accumulate = torch.float64 if x.ndim > 2 else x.dtype
    count = x.numel() // x.shape[1] * torch.distributed.get_world_size()
    mean = (all_reduce(x.sum(axes, dtype=accumulate)) / count).to(x.dtype)
    centered = x - mean.reshape(shape)
    variance = (all_reduce((centered * centered).sum(axes, dtype=accumulate)) / count).to(x.dtype)
    with torch.no_grad():
        keep = 1.0 - momentum
        running_mean.mul_(keep).add_(momentum * mean)
        running_var.mul_(keep).add_(momentum * variance * (count / (count - 1)))
    return centered, variance


# -- pooling, channel dropout and products (gx.layers.pooling, .regularization, .structure) -------


@LAYER_CLASSES.register("global_sum")
class GlobalSum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum((2, 3))


@LAYER_CLASSES.register("global_mean")
class GlobalMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


@LAYER_CLASSES.register("dropout2d")
class Dropout2d(nn.Module):
    """x * mask in training mode, one mask value per sample and channel from gx's shared numpy
    RNG."""

    def __init__(self, p: float, masks: MaskSource) -> None:
        super().__init__()
        self.p, self.masks = p, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.from_numpy(self.masks.channel_mask(x.shape, self.p))
        return x * mask.to(device=x.device, dtype=x.dtype)


@LAYER_CLASSES.register("multiply")
class Multiply(nn.Module):
    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return first * second


# -- conditional batch norm and self-attention -----------------------------------------------------
# (instance_norm, group_norm and layer_norm are PyTorch's own classes: their definitions name them)


@LAYER_CLASSES.register("conditional_batch_norm")
class ConditionalBatchNorm(nn.Module):
    """Batch norm without a scale and shift of its own (PyTorch's, running statistics
    included; synced over the processes of a run as gx's batch_norm is), then a gain and a bias
    looked up per class."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(
        self, num_features: int, classes: int, eps: float, momentum: float, synced: bool = False
    ) -> None:
        super().__init__()
        self.eps, self.momentum, self.synced = eps, momentum, synced
        self.weight = nn.Parameter(torch.ones(classes, num_features))
        self.bias = nn.Parameter(torch.zeros(classes, num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        if self.synced and self.training:
            centered, variance = _global_batch_statistics(
                x, self.running_mean, self.running_var, self.momentum
            )
            shape = [1, -1] + [1] * (x.ndim - 2)
            return centered * torch.rsqrt(variance + self.eps).reshape(shape)
        return F.batch_norm(
            x, self.running_mean, self.running_var, None, None, self.training, self.momentum,
            self.eps,
        )  # fmt: skip

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shape = [x.shape[0], -1] + [1] * (x.ndim - 2)
        # F.embedding for the lookups, as in Projection: the same sums with strict math
        gain = F.embedding(labels, self.weight).reshape(shape)
        return self.normalized(x) * gain + F.embedding(labels, self.bias).reshape(shape)


def _conv1x1(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, u: torch.Tensor | None,
    training: bool,
) -> torch.Tensor:  # fmt: skip
    if u is not None:
        weight = _spectrally_normalized(weight, u, training)
    return F.conv2d(x, weight, bias)


@LAYER_CLASSES.register("self_attention")
class SelfAttention(nn.Module):
    """SAGAN's block (gx.layers.attention): y = x + gamma * attention-weighted h(x)."""

    def __init__(self, channels: int, reduced: int, bias: bool, spectral_norm: bool) -> None:
        super().__init__()
        for projection, out in (("f", reduced), ("g", reduced), ("h", channels)):
            self.register_parameter(
                f"{projection}_weight", nn.Parameter(torch.empty(out, channels, 1, 1))
            )
            self.register_parameter(
                f"{projection}_bias", nn.Parameter(torch.empty(out)) if bias else None
            )
            if spectral_norm:
                self.register_buffer(f"{projection}_sn_u", torch.zeros(out))
        self.spectral_norm = spectral_norm
        self.gamma = nn.Parameter(torch.zeros(1))

    def project(self, x: torch.Tensor, projection: str) -> torch.Tensor:
        """One 1x1 convolution, its positions flattened: (N, out, H * W)."""
        u = getattr(self, f"{projection}_sn_u") if self.spectral_norm else None
        weight, bias = getattr(self, f"{projection}_weight"), getattr(self, f"{projection}_bias")
        return _conv1x1(x, weight, bias, u, self.training).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g, h = (self.project(x, projection) for projection in ("f", "g", "h"))
        # scores[n, j, i] = g(x_j) . f(x_i); each output position j weighs the positions i
        attention = torch.softmax(torch.bmm(g.transpose(1, 2), f), dim=-1)
        attended = torch.bmm(h, attention.transpose(1, 2))  # (N, C, H * W)
        return x + self.gamma * attended.reshape(x.shape)


def make_layer(
    info: LayerInfo, masks: MaskSource, dtype: torch.dtype, synced_batch_norm: bool = False
) -> nn.Module:
    extra: dict[str, object] = {}
    if info.kind in ("one_hot", "label_map"):
        extra["dtype"] = dtype  # no parameters to carry it: the labels become this type
    elif info.kind == "batch_norm":
        extra["images"] = len(info.in_shape) > 1
        extra["synced"] = synced_batch_norm
    elif info.kind == "conditional_batch_norm":
        extra["synced"] = synced_batch_norm
    return LAYER_CLASSES.build(info, masks, **extra)
