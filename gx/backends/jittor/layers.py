"""gx's own Jittor modules: for the layer kinds Jittor has no class for, and where Jittor's
class computes something other than gx's definition.

Differences neutralised here (see docs/semantics.md):
- BatchNorm: two-pass variance, unbiased running variance, PyTorch's update formula, channel
  sums accumulated as PyTorch's CPU kernel accumulates them, PyTorch's backward formula.
- InstanceNorm, GroupNorm, LayerNorm: batch norm's two-pass arithmetic on each sample's own
  values (Jittor's take E[x^2] - E[x]^2); instance norm learns no scale unless asked.
- Tanh: backward g * (1 - y^2); Jittor's g / cosh(x)^2 is NaN for |x| >= ~50 under -Ofast.
- Sigmoid: no input clamping; backward g * (1 - y) * y.
- Dropout: gx's shared masks, active exactly in training mode.
- Embedding: integer indices only (Jittor would truncate floats).
- LeakyReLU: slope passed as Jittor's ``scale``.

Jittor differentiates a ``jt.Function``'s backward only through its incoming gradient: what
the backward reads from the forward pass (saved outputs, batch statistics) counts as constant,
so the gradient of an input gradient (a gradient penalty's) misses their terms: measured on
small critics, the penalty's gradients for batch norm's own weights and the layers before each
of the three came out 100% off or more. Built with ``second_order``,
tanh, sigmoid and the batch, instance, group and layer norms recompute those values in their
backward from their inputs, as ordinary differentiable operations: the same numbers, at the
price of the forward's work again.
"""

from __future__ import annotations

from typing import Any

import jittor as jt
import numpy as np
from jittor import nn

from gx.backends.base import LayerClasses
from gx.errors import GxError
from gx.layers import Shape
from gx.layers.pooling import pooled_size
from gx.layers.resampling import bilinear_taps
from gx.spec import LayerInfo, MaskSource

LAYER_CLASSES = LayerClasses("jittor")


def _accumulator(x: jt.Var) -> jt.Var:
    """x in the type batch-norm sums accumulate in, the way PyTorch's CPU kernel does (measured).

    Over (N, C) inputs PyTorch sums each channel in one running float32 total, as Jittor does,
    and the two agree bit for bit. Over (N, C, H, W) it accumulates the statistics in float64;
    Jittor's float32 running total over dcgan's 128 x 4 x 4 values per channel was ~10x further
    from float64 (batch-norm output 3.5e-6 off, PyTorch 4e-7), enough extra rounding to flip
    LeakyReLU branches and the signs of Adam's first updates: the backends drifted apart from
    step 2. Fused into the reduction, the float64 accumulation costs nothing measurable.
    """
    return x if x.ndim == 2 else x.float64()


def _channel_sum(x: jt.Var, axes: list[int]) -> jt.Var:
    return _accumulator(x).sum(dims=axes, keepdims=True).cast(x.dtype)


def _channel_mean(x: jt.Var, axes: list[int]) -> jt.Var:
    return _accumulator(x).mean(dims=axes, keepdims=True).cast(x.dtype)


def _global_channel_sum(x: jt.Var, axes: list[int]) -> jt.Var:
    """Per-channel sums over every process of an MPI run, accumulated as ``_channel_sum``."""
    return _accumulator(x).sum(dims=axes, keepdims=True).mpi_all_reduce("add").cast(x.dtype)


class _BatchNormTrainFunction(jt.Function):
    """Batch norm over batch statistics, with PyTorch's backward formula:
    dx = (dy - mean(dy) - xhat * mean(dy * xhat)) * invstd * weight, summed as PyTorch sums.

    ``processes`` > 1 (an MPI run): statistics over the global batch, the forward and backward
    channel sums added over every process by Jittor's MPI all-reduce. The weight and bias
    gradients stay this process's own: the optimizer averages them over the processes.
    ``sources`` (x, weight): the backward recomputes its statistics from them (second order).
    """

    def __init__(self, processes: int = 1, sources: tuple[jt.Var, jt.Var] | None = None) -> None:
        self.processes, self.sources = processes, sources

    def _sums(self, x: jt.Var) -> tuple[jt.Var, jt.Var]:
        """(this process's, every process's) per-channel sums of x."""
        if self.processes == 1:
            local = _channel_sum(x, self.axes)
            return local, local
        total = _accumulator(x).sum(dims=self.axes, keepdims=True)
        return total.cast(x.dtype), total.mpi_all_reduce("add").cast(x.dtype)

    def _mean(self, x: jt.Var) -> jt.Var:
        if self.processes == 1:
            return _channel_mean(x, self.axes)
        return _global_channel_sum(x, self.axes) / (x.numel() // x.shape[1] * self.processes)

    def _normalizers(self, x: jt.Var, weight: jt.Var) -> tuple[jt.Var, ...]:
        """(batch mean, variance, x - mean, 1 / sqrt(variance + eps), weight broadcast)."""
        mean = self._mean(x)
        centered = x - mean
        variance = self._mean(centered * centered)
        # One reciprocal square root per channel, then products: no per-element sqrt or
        # division (those made this layer 1.5-3x slower than jittor.nn.BatchNorm).
        inverse = 1.0 / jt.sqrt(variance + self.eps)
        return mean, variance, centered, inverse, weight.broadcast(x, self.axes)

    def execute(
        self, x: jt.Var, weight: jt.Var, bias: jt.Var, eps: float
    ) -> tuple[jt.Var, jt.Var, jt.Var]:
        self.axes, self.eps = [0] + list(range(2, x.ndim)), eps
        mean, variance, self.centered, self.inverse, self.weight = self._normalizers(x, weight)
        output = self.centered * self.inverse * self.weight + bias.broadcast(x, self.axes)
        return output, mean.reshape(-1), variance.reshape(-1)

    def grad(
        self, grad_output: jt.Var, *unused_statistics: jt.Var
    ) -> tuple[jt.Var, jt.Var, jt.Var, None]:
        centered, inverse, weight = self.centered, self.inverse, self.weight
        if self.sources is not None:
            _, _, centered, inverse, weight = self._normalizers(*self.sources)
        count = grad_output.numel() // grad_output.shape[1] * self.processes
        local_sum_dy, sum_dy = self._sums(grad_output)
        local_dot, dot = self._sums(centered * grad_output)
        projection = dot * inverse * inverse / count
        grad_input = (grad_output - sum_dy / count - centered * projection) * (inverse * weight)
        return grad_input, (local_dot * inverse).reshape(-1), local_sum_dy.reshape(-1), None


class _RunningStatistics(jt.Module):
    """Batch norm's running statistics, and the normalization with them and with the batch's,
    for batch norm and conditional batch norm."""

    def __init__(
        self, num_features: int, eps: float, momentum: float, processes: int, second_order: bool
    ) -> None:
        self.eps, self.momentum, self.processes = eps, momentum, processes
        self.second_order = second_order
        self.running_mean = jt.zeros(num_features).stop_grad()
        self.running_var = jt.ones(num_features).stop_grad()

    def normalize(self, x: jt.Var, weight: jt.Var, bias: jt.Var) -> jt.Var:
        """Batch norm of x with this scale and shift: over the batch in training mode (moving
        the running statistics), else over the running statistics."""
        axes = [0] + list(range(2, x.ndim))
        if not self.is_train:
            centered = x - self.running_mean.broadcast(x, axes)
            inverse = (1.0 / jt.sqrt(self.running_var + self.eps)).broadcast(x, axes)
            return centered * inverse * weight.broadcast(x, axes) + bias.broadcast(x, axes)
        sources = (x, weight) if self.second_order else None
        output, batch_mean, batch_variance = _BatchNormTrainFunction(self.processes, sources)(
            x, weight, bias, self.eps
        )
        count = x.numel() // x.shape[1] * self.processes
        keep = 1.0 - self.momentum
        self.running_mean.update(self.momentum * batch_mean.stop_grad() + keep * self.running_mean)
        self.running_var.update(
            self.momentum * batch_variance.stop_grad() * (count / (count - 1))
            + keep * self.running_var
        )
        return output


@LAYER_CLASSES.register("batch_norm")
class BatchNorm(_RunningStatistics):
    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float,
        processes: int = 1,
        second_order: bool = False,
    ) -> None:
        super().__init__(num_features, eps, momentum, processes, second_order)
        self.weight = jt.ones(num_features)
        self.bias = jt.zeros(num_features)

    def execute(self, x: jt.Var) -> jt.Var:
        return self.normalize(x, self.weight, self.bias)


class _ElementwiseFunction(jt.Function):
    """y = f(x) with a backward g * f'(x) written in y; ``source`` (x itself): the backward
    recomputes y from it through this function again, so that it can be differentiated."""

    def __init__(self, source: jt.Var | None = None) -> None:
        self.source = source

    def execute(self, x: jt.Var) -> jt.Var:
        self.y = self.value(x)
        return self.y

    def grad(self, grad_output: jt.Var) -> jt.Var:
        y = self.y if self.source is None else type(self)(self.source)(self.source)
        return self.backward(grad_output, y)

    def value(self, x: jt.Var) -> jt.Var:
        raise NotImplementedError

    def backward(self, grad_output: jt.Var, y: jt.Var) -> jt.Var:
        raise NotImplementedError


class _TanhFunction(_ElementwiseFunction):
    def value(self, x: jt.Var) -> jt.Var:
        return jt.tanh(x)

    def backward(self, grad_output: jt.Var, y: jt.Var) -> jt.Var:
        return grad_output * (1.0 - y * y)


class _SigmoidFunction(_ElementwiseFunction):
    def value(self, x: jt.Var) -> jt.Var:
        return 1.0 / (1.0 + jt.exp(-x))

    def backward(self, grad_output: jt.Var, y: jt.Var) -> jt.Var:
        return grad_output * (1.0 - y) * y


class _Elementwise(jt.Module):
    function: type[_ElementwiseFunction]

    def __init__(self, second_order: bool = False) -> None:
        self.second_order = second_order

    def execute(self, x: jt.Var) -> jt.Var:
        return self.function(x if self.second_order else None)(x)


@LAYER_CLASSES.register("tanh")
class Tanh(_Elementwise):
    function = _TanhFunction


@LAYER_CLASSES.register("sigmoid")
class Sigmoid(_Elementwise):
    function = _SigmoidFunction


def _require_integer(labels: jt.Var) -> None:
    if not labels.dtype.is_int():
        raise GxError(f"labels must be integers, got {labels.dtype}; pass e.g. np.int64 values")


@LAYER_CLASSES.register("embedding")
class Embedding(jt.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        self.weight = jt.zeros((num_embeddings, embedding_dim))

    def execute(self, labels: jt.Var) -> jt.Var:
        _require_integer(labels)
        return self.weight[labels]


@LAYER_CLASSES.register("one_hot", "label_map")
class OneHot(jt.Module):
    def __init__(self, classes: int, size: tuple[int, int] | None = None) -> None:
        self.classes, self.size = classes, size

    def execute(self, labels: jt.Var) -> jt.Var:
        _require_integer(labels)
        vectors = (labels.reshape(-1, 1) == jt.arange(self.classes).reshape(1, -1)).float32()
        if self.size is None:
            return vectors
        count = vectors.shape[0]
        return vectors.reshape(count, self.classes, 1, 1).broadcast(
            (count, self.classes, *self.size)
        )


@LAYER_CLASSES.register("dropout")
class Dropout(jt.Module):
    def __init__(self, p: float, masks: MaskSource) -> None:
        self.p, self.masks = p, masks

    def execute(self, x: jt.Var) -> jt.Var:
        if not self.is_train or self.p == 0:
            return x
        return x * jt.array(self.masks.mask(x.shape, self.p))


@LAYER_CLASSES.register("leaky_relu")
class LeakyReLU(jt.Module):
    def __init__(self, negative_slope: float) -> None:
        self.slope = negative_slope

    def execute(self, x: jt.Var) -> jt.Var:
        return nn.leaky_relu(x, self.slope)


@LAYER_CLASSES.register("relu")
class ReLU(jt.Module):
    def execute(self, x: jt.Var) -> jt.Var:
        return nn.relu(x)


@LAYER_CLASSES.register("flatten")
class Flatten(jt.Module):
    def execute(self, x: jt.Var) -> jt.Var:
        return x.reshape(x.shape[0], -1)


@LAYER_CLASSES.register("reshape")
class Reshape(jt.Module):
    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def execute(self, x: jt.Var) -> jt.Var:
        return x.reshape(x.shape[0], *self.shape)


@LAYER_CLASSES.register("concat")
class Concat(jt.Module):
    def execute(self, *parts: jt.Var) -> jt.Var:
        return jt.concat(list(parts), dim=1)


def _normalize(vector: jt.Var) -> jt.Var:
    return vector / jt.maximum(jt.sqrt((vector * vector).sum()), 1e-12)


def _spectrally_normalized(weight: jt.Var, u: jt.Var, training: bool) -> jt.Var:
    """weight / sigma, gx's spectral normalization (gx.layers.dense): one power iteration per
    training forward pass, stored in ``u``."""
    matrix = weight.reshape(weight.shape[0], -1)
    frozen = matrix.detach()  # stop_grad() would stop the gradient of matrix itself
    v = _normalize(jt.matmul(u.reshape(1, -1), frozen).reshape(-1)).stop_grad()
    if training:
        updated = _normalize(jt.matmul(frozen, v.reshape(-1, 1)).reshape(-1)).stop_grad()
        u.update(updated)
        u = updated
    sigma = (u * jt.matmul(matrix, v.reshape(-1, 1)).reshape(-1)).sum()
    return weight / sigma


class SpectralLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__(in_features, out_features, bias)
        self.sn_u = jt.zeros(out_features).stop_grad()

    def execute(self, x: jt.Var) -> jt.Var:
        weight = _spectrally_normalized(self.weight, self.sn_u, self.is_train)
        y = nn.matmul_transpose(x, weight)
        return y if self.bias is None else y + self.bias


class SpectralConv2d(nn.Conv2d):
    def __init__(self, out_channels: int, **arguments: object) -> None:
        super().__init__(out_channels=out_channels, **arguments)
        self.sn_u = jt.zeros(out_channels).stop_grad()

    def execute(self, x: jt.Var) -> jt.Var:
        weight = _spectrally_normalized(self.weight, self.sn_u, self.is_train)
        return nn.conv2d(x, weight, self.bias, self.stride, self.padding)


@LAYER_CLASSES.register("linear")
def _linear(spectral_norm: bool = False, **arguments: Any) -> jt.Module:
    return (SpectralLinear if spectral_norm else nn.Linear)(**arguments)


@LAYER_CLASSES.register("conv2d")
def _conv2d(spectral_norm: bool = False, **arguments: Any) -> jt.Module:
    return (SpectralConv2d if spectral_norm else nn.Conv2d)(**arguments)


@LAYER_CLASSES.register("add")
class Add(jt.Module):
    def execute(self, *parts: jt.Var) -> jt.Var:
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


@LAYER_CLASSES.register("projection")
class Projection(jt.Module):
    """<weight[label], features> per sample, shape (N, 1)."""

    def __init__(self, classes: int, features: int) -> None:
        self.weight = jt.zeros((classes, features))

    def execute(self, features: jt.Var, labels: jt.Var) -> jt.Var:
        _require_integer(labels)
        return (self.weight[labels] * features).sum(1, keepdims=True)


# -- resampling, pooling, channel dropout, products and softmax -----------------------------------
# (gx.layers.resampling, .pooling, .regularization, .structure, .activations). Differences
# neutralised here:
# - Upsample: nearest by exact integer division (Jittor's multiplies by 1/scale in float32);
#   bilinear with gx's own pixels and weights.
# - AvgPool2d: also a window as large as the input, which Jittor's refuses.
# - Dropout2d: gx's shared channel masks, active exactly in training mode.


@LAYER_CLASSES.register("upsample")
class Upsample(jt.Module):
    """gx's upsampling: nearest reads pixel i // scale, exactly (Jittor's own rounds a float
    index); bilinear reads the pixels and weights of gx.layers.resampling.bilinear_taps, along
    the width and then the height, as PyTorch's kernel does."""

    def __init__(self, scale_factor: float, mode: str, align_corners: bool = False) -> None:
        # PyTorch's keywords; gx's bilinear mode never aligns corners
        self.scale, self.mode = int(scale_factor), mode

    def execute(self, x: jt.Var) -> jt.Var:
        count, channels, height, width = x.shape
        if self.mode == "nearest":
            return x.reindex(
                [count, channels, height * self.scale, width * self.scale],
                ["i0", "i1", f"i2/{self.scale}", f"i3/{self.scale}"],
            )
        across = _interpolated(x, 3, bilinear_taps(width, self.scale))
        return _interpolated(across, 2, bilinear_taps(height, self.scale))


def _interpolated(x: jt.Var, axis: int, taps: tuple[np.ndarray, ...]) -> jt.Var:
    """w_first * x[first] + w_second * x[second] along ``axis`` of (N, C, H, W)."""
    first, second, first_weight, second_weight = taps
    shape = list(x.shape)
    shape[axis] = len(first)
    along = [1, 1, 1, 1]
    along[axis] = -1

    def read(positions: np.ndarray) -> jt.Var:
        indices = [f"i{dim}" for dim in range(4)]
        indices[axis] = f"@e0(i{axis})"
        return x.reindex(shape, indices, extras=[jt.array(positions.astype(np.int32))])

    def weight(values: np.ndarray) -> jt.Var:
        return jt.array(values.astype(np.float32).reshape(along))

    return read(first) * weight(first_weight) + read(second) * weight(second_weight)


@LAYER_CLASSES.register("avg_pool2d")
class AvgPool2d(jt.Module):
    """Window sums over the zero-padded input, each divided by kernel * kernel. Jittor's own
    AvgPool2d computes the same but refuses a window as large as the input (2x2 to 1x1)."""

    def __init__(self, kernel_size: int, stride: int, padding: int) -> None:
        self.kernel, self.stride, self.padding = kernel_size, stride, padding

    def execute(self, x: jt.Var) -> jt.Var:
        count, channels, height, width = x.shape
        rows, columns = (
            pooled_size(size, self.kernel, self.stride, self.padding) for size in (height, width)
        )
        # positions outside the input read 0: the zero padding
        windows = x.reindex(
            [count, channels, rows, columns, self.kernel, self.kernel],
            [
                "i0",
                "i1",
                f"i2*{self.stride}-{self.padding}+i4",
                f"i3*{self.stride}-{self.padding}+i5",
            ],
        )
        return windows.sum([4, 5]) / (self.kernel * self.kernel)


@LAYER_CLASSES.register("global_sum")
class GlobalSum(jt.Module):
    def execute(self, x: jt.Var) -> jt.Var:
        return x.sum([2, 3])


@LAYER_CLASSES.register("global_mean")
class GlobalMean(jt.Module):
    def execute(self, x: jt.Var) -> jt.Var:
        return x.sum([2, 3]) / (x.shape[2] * x.shape[3])


@LAYER_CLASSES.register("dropout2d")
class Dropout2d(jt.Module):
    def __init__(self, p: float, masks: MaskSource) -> None:
        self.p, self.masks = p, masks

    def execute(self, x: jt.Var) -> jt.Var:
        if not self.is_train or self.p == 0:
            return x
        return x * jt.array(self.masks.channel_mask(x.shape, self.p))


@LAYER_CLASSES.register("multiply")
class Multiply(jt.Module):
    def execute(self, first: jt.Var, second: jt.Var) -> jt.Var:
        return first * second


@LAYER_CLASSES.register("softmax")
class Softmax(jt.Module):
    def __init__(self, dim: int) -> None:
        self.dim = dim

    def execute(self, x: jt.Var) -> jt.Var:
        return nn.softmax(x, self.dim)


# -- conditional batch norm, instance, group and layer norm, self-attention ------------------------


@LAYER_CLASSES.register("conditional_batch_norm")
class ConditionalBatchNorm(_RunningStatistics):
    """gx's batch norm with scale 1 and shift 0 (its running statistics, its sums, its backward
    and its sync over MPI processes), then a gain and a bias looked up per class."""

    def __init__(
        self,
        num_features: int,
        classes: int,
        eps: float,
        momentum: float,
        processes: int = 1,
        second_order: bool = False,
    ) -> None:
        super().__init__(num_features, eps, momentum, processes, second_order)
        self.weight = jt.ones((classes, num_features))
        self.bias = jt.zeros((classes, num_features))

    def execute(self, x: jt.Var, labels: jt.Var) -> jt.Var:
        _require_integer(labels)
        channels = x.shape[1]
        normalized = self.normalize(x, jt.ones(channels), jt.zeros(channels))
        shape = (x.shape[0], channels) + (1,) * (x.ndim - 2)
        return normalized * self.weight[labels].reshape(shape) + self.bias[labels].reshape(shape)


class _SampleNorm(jt.Module):
    """Instance, group and layer norm: each sample's values, split into equal runs, normalised
    by each run's own mean and biased variance. Viewed as (1, samples x runs, values per run),
    that is batch norm's arithmetic on every run as a channel, which is how PyTorch computes
    instance norm, so gx's batch-norm function (its float64 sums, its backward formula and its
    second order) computes all three."""

    def __init__(self, eps: float, second_order: bool) -> None:
        self.eps, self.second_order = eps, second_order

    def normalized(self, x: jt.Var, runs_per_sample: int) -> jt.Var:
        runs = x.shape[0] * runs_per_sample
        view, ones = x.reshape(1, runs, -1), jt.ones(runs)
        sources = (view, ones) if self.second_order else None
        output, _, _ = _BatchNormTrainFunction(1, sources)(view, ones, jt.zeros(runs), self.eps)
        return output.reshape(x.shape)


def _per_channel(normalized: jt.Var, weight: jt.Var, bias: jt.Var) -> jt.Var:
    axes = [0] + list(range(2, normalized.ndim))
    return normalized * weight.broadcast(normalized, axes) + bias.broadcast(normalized, axes)


@LAYER_CLASSES.register("instance_norm")
class InstanceNorm(_SampleNorm):
    def __init__(
        self, num_features: int, eps: float, affine: bool, second_order: bool = False
    ) -> None:
        super().__init__(eps, second_order)
        self.affine = affine
        if affine:
            self.weight = jt.ones(num_features)
            self.bias = jt.zeros(num_features)

    def execute(self, x: jt.Var) -> jt.Var:
        normalized = self.normalized(x, x.shape[1])
        return _per_channel(normalized, self.weight, self.bias) if self.affine else normalized


@LAYER_CLASSES.register("group_norm")
class GroupNorm(_SampleNorm):
    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float,
        affine: bool,
        second_order: bool = False,
    ) -> None:
        super().__init__(eps, second_order)
        self.groups, self.affine = num_groups, affine
        if affine:
            self.weight = jt.ones(num_channels)
            self.bias = jt.zeros(num_channels)

    def execute(self, x: jt.Var) -> jt.Var:
        normalized = self.normalized(x, self.groups)
        return _per_channel(normalized, self.weight, self.bias) if self.affine else normalized


@LAYER_CLASSES.register("layer_norm")
class LayerNorm(_SampleNorm):
    def __init__(
        self,
        normalized_shape: Shape,
        eps: float,
        elementwise_affine: bool,
        second_order: bool = False,
    ) -> None:
        super().__init__(eps, second_order)
        self.affine = elementwise_affine
        if elementwise_affine:
            self.weight = jt.ones(normalized_shape)
            self.bias = jt.zeros(normalized_shape)

    def execute(self, x: jt.Var) -> jt.Var:
        normalized = self.normalized(x, 1)
        return normalized * self.weight + self.bias if self.affine else normalized


@LAYER_CLASSES.register("self_attention")
class SelfAttention(jt.Module):
    """SAGAN's block (gx.layers.attention): y = x + gamma * attention-weighted h(x)."""

    def __init__(self, channels: int, reduced: int, bias: bool, spectral_norm: bool) -> None:
        self.bias, self.spectral_norm = bias, spectral_norm
        for projection, out in (("f", reduced), ("g", reduced), ("h", channels)):
            setattr(self, f"{projection}_weight", jt.zeros((out, channels, 1, 1)))
            if bias:
                setattr(self, f"{projection}_bias", jt.zeros(out))
            if spectral_norm:
                setattr(self, f"{projection}_sn_u", jt.zeros(out).stop_grad())
        self.gamma = jt.zeros(1)

    def project(self, x: jt.Var, projection: str) -> jt.Var:
        """One 1x1 convolution, its positions flattened: (N, out, H * W)."""
        weight = getattr(self, f"{projection}_weight")
        if self.spectral_norm:
            u = getattr(self, f"{projection}_sn_u")
            weight = _spectrally_normalized(weight, u, self.is_train)
        bias = getattr(self, f"{projection}_bias") if self.bias else None
        return nn.conv2d(x, weight, bias).reshape(x.shape[0], weight.shape[0], -1)

    def execute(self, x: jt.Var) -> jt.Var:
        f, g, h = (self.project(x, projection) for projection in ("f", "g", "h"))
        # scores[n, j, i] = g(x_j) . f(x_i); each output position j weighs the positions i
        attention = nn.softmax(nn.bmm(g.transpose(0, 2, 1), f), dim=-1)
        attended = nn.bmm(h, attention.transpose(0, 2, 1))  # (N, C, H * W)
        return x + self.gamma * attended.reshape(x.shape)


# The kinds whose backward reads values saved by the forward pass (see the module docstring)
SECOND_ORDER_KINDS = frozenset(
    {
        "tanh",
        "sigmoid",
        "batch_norm",
        "conditional_batch_norm",
        "instance_norm",
        "group_norm",
        "layer_norm",
    }
)
# The kinds of batch norm, synced over the processes of a run
SYNCED_KINDS = frozenset({"batch_norm", "conditional_batch_norm"})


def make_layer(
    info: LayerInfo, masks: MaskSource, batch_norm_processes: int = 1, second_order: bool = False
) -> jt.Module:
    """``batch_norm_processes`` > 1: batch norm synced over that many MPI processes;
    ``second_order``: a backward that can be differentiated again."""
    extra: dict[str, Any] = {"processes": batch_norm_processes} if info.kind in SYNCED_KINDS else {}
    if second_order and info.kind in SECOND_ORDER_KINDS:
        extra["second_order"] = True
    return LAYER_CLASSES.build(info, masks, **extra)
