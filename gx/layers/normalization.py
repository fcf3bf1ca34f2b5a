"""Normalization layers: batch norm and its class-conditional form, which keep running
statistics for eval mode, and instance, group and layer norm, which normalise each sample with
its own statistics in both modes.

Every one of them normalises with the biased variance computed in two passes (the mean first,
then the mean square of the centred values), as PyTorch does; Jittor's own classes compute
E[x^2] - E[x]^2, which loses precision when the values have a large mean (docs/semantics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.layers.base import (
    Layer,
    ParityCase,
    Shape,
    Value,
    label_input,
    need_rank,
    positive,
)
from gx.layers.importing import Unsupported

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

_RUNNING_START = {"running_mean": 0.0, "running_var": 1.0}


def check_eps(name: str, eps: float) -> None:
    if not isinstance(eps, (int, float)) or eps <= 0:
        raise SpecError(name, f"eps must be > 0, got {eps!r}", "use e.g. 1e-5")


def check_eps_momentum(name: str, eps: float, momentum: float) -> None:
    check_eps(name, eps)
    if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise SpecError(name, f"momentum must be in [0, 1], got {momentum!r}", "use e.g. 0.1")


@dataclass(frozen=True)
class RunningStatistics(Layer):
    """What batch norm and conditional batch norm share: batch statistics in training mode,
    running statistics (``running_mean``, ``running_var`` of the first axis) in eval mode, with
    PyTorch's update running = (1 - momentum) * running + momentum * batch and the *unbiased*
    batch variance stored, while the output is normalised with the biased one."""

    eps: float = 1e-5
    momentum: float = 0.1

    def check(self, name: str) -> None:
        check_eps_momentum(name, self.eps, self.momentum)

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"running_mean": (channels,), "running_var": (channels,)}

    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        """Scales 1 and shifts 0 (PyTorch's); ``dcgan``: scales from N(1, 0.02)."""
        if key == "bias":
            return np.zeros(shape)
        return rng.normal(1.0, 0.02, shape) if scheme == "dcgan" else np.ones(shape)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, _RUNNING_START[key])

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise


@dataclass(frozen=True)
class BatchNorm(RunningStatistics):
    """Batch norm over features (C,) or channels (C, H, W); 1d or 2d follows the input.

    gx's definition (both backends): normalise with the biased batch variance computed in two
    passes, and store the *unbiased* variance in ``running_var``, as PyTorch does;
    running = (1 - momentum) * running + momentum * batch.
    """

    kind: ClassVar[str] = "batch_norm"
    torch_modules = ("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d")
    parity_cases = {
        "batch_norm_1d": ParityCase({"x": [6]}, init="dcgan"),
        "batch_norm_1d_eps_0.8": ParityCase({"x": [6]}, {"eps": 0.8}, init="dcgan"),
        "batch_norm_2d": ParityCase({"x": [3, 4, 4]}, init="dcgan"),
        "batch_norm_2d_eps_0.8_momentum_0.3": ParityCase(
            {"x": [3, 4, 4]}, {"eps": 0.8, "momentum": 0.3}, init="dcgan"
        ),
    }

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "batch_norm", shape, (1, 3), "normalise features (C,) or images (C, H, W)")
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"weight": (channels,), "bias": (channels,)}

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"num_features": info.in_shape[0], "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if not module.affine:
            raise Unsupported("has affine=False; gx's batch_norm always learns a scale and shift")
        if not module.track_running_stats:
            raise Unsupported(
                "has track_running_stats=False; gx's batch_norm keeps running statistics for "
                "eval mode"
            )
        if module.momentum is None:
            raise Unsupported(
                "has momentum=None (a cumulative average); gx's batch_norm takes a number, "
                "e.g. momentum=0.1"
            )
        return {"eps": float(module.eps), "momentum": float(module.momentum)}


@dataclass(frozen=True)
class ConditionalBatchNorm(RunningStatistics):
    """Class-conditional batch norm (the ResNet generators of SNGAN and BigGAN): batch norm
    without a scale and shift of its own (batch statistics in training mode, running statistics
    in eval mode, exactly as ``batch_norm``), then a gain and a bias per class,
    y = x_hat * weight[label] + bias[label], from tables of shape (classes, C).

    Inputs: [x, label]. The tables start as SNGAN's (Miyato and Koyama, 2018) do: every gain 1,
    every bias 0, so the layer starts as plain batch norm; the ``dcgan`` scheme draws the gains
    from N(1, 0.02) as it does batch norm's scales. (BigGAN's generator computes its gain as
    1 + W e and its bias as W' e from a shared class embedding e instead, which this kind does
    not.)
    """

    kind: ClassVar[str] = "conditional_batch_norm"
    arity: ClassVar[int] = 2
    accepts_labels: ClassVar[bool] = True
    imported_by = (
        "not recognised in traced code: PyTorch has no module for it (an affine-free batch "
        "norm times a gain looked up per class, plus a bias looked up per class)"
    )
    parity_cases = {
        "conditional_batch_norm_1d": ParityCase(
            {"x": [6], "label": {"classes": 3}}, reads=["x", "label"], init="dcgan"
        ),
        "conditional_batch_norm_2d_eps_0.8_momentum_0.3": ParityCase(
            {"x": [3, 4, 4], "label": {"classes": 3}},
            {"eps": 0.8, "momentum": 0.3},
            reads=["x", "label"],
            init="dcgan",
        ),
    }

    def output(self, name: str, inputs: list[Value]) -> Value:
        features, label = inputs
        if features.is_label:
            raise SpecError(
                name,
                "conditional_batch_norm's first input must be features or images, got labels",
                "write input: [x, label]",
            )
        need_rank(
            name,
            "conditional_batch_norm",
            features.shape,
            (1, 3),
            "normalise features (C,) or images (C, H, W)",
        )
        label_input(name, "conditional_batch_norm's second input", label)
        return Value(features.shape)

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        features, label = inputs
        return {
            "weight": (label.classes, features.shape[0]),
            "bias": (label.classes, features.shape[0]),
        }

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {
            "num_features": info.in_shape[0],
            "classes": info.classes,
            "eps": self.eps,
            "momentum": self.momentum,
        }


@dataclass(frozen=True)
class SampleNorm(Layer):
    """What instance, group and layer norm share: each sample normalised with statistics of its
    own values, in training and eval mode alike (no running statistics), then an optional
    learned scale (ones at the start) and shift (zeros), in every initialization scheme."""

    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        return np.ones(shape) if key == "weight" else np.zeros(shape)

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise


@dataclass(frozen=True)
class InstanceNorm(SampleNorm):
    """Instance norm of images (C, H, W): every channel of every sample normalised over its
    H x W values with their own mean and biased variance, in training and eval mode alike; with
    ``affine``, then a learned scale and shift per channel (off by default, as in
    nn.InstanceNorm2d).

    gx keeps no running statistics: that is nn.InstanceNorm2d's default
    (track_running_stats=False), the setting of the pix2pix and CycleGAN generators. gx import
    refuses a module that tracks them, whose eval mode would use them instead.
    """

    kind: ClassVar[str] = "instance_norm"
    framework_classes = {"torch": "torch.nn.InstanceNorm2d"}
    torch_modules = ("torch.nn.InstanceNorm2d",)
    parity_cases = {
        "instance_norm": ParityCase({"x": [3, 4, 4]}),
        "instance_norm_affine_eps_0.1": ParityCase({"x": [3, 4, 4]}, {"affine": True, "eps": 0.1}),
    }
    eps: float = 1e-5
    affine: bool = False

    def check(self, name: str) -> None:
        check_eps(name, self.eps)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(
            name,
            "instance_norm",
            shape,
            (3,),
            "normalise images (C, H, W); for features use layer_norm",
        )
        if shape[1] * shape[2] < 2:
            raise SpecError(
                name,
                f"instance_norm needs more than one position per channel, got {shape}",
                "normalise larger images, or use batch_norm",
            )
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"weight": (channels,), "bias": (channels,)} if self.affine else {}

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"num_features": info.in_shape[0], "eps": self.eps, "affine": self.affine}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if module.track_running_stats:
            raise Unsupported(
                "has track_running_stats=True; gx's instance_norm normalises each sample with "
                "its own statistics in training and eval mode: build it with "
                "track_running_stats=False (nn.InstanceNorm2d's default)"
            )
        return {"eps": float(module.eps), "affine": bool(module.affine)}


@dataclass(frozen=True)
class GroupNorm(SampleNorm):
    """Group norm (Wu and He, 2018): the channels of each sample split into ``groups`` groups
    of equal size, each normalised over all its values (channels x H x W) with their own mean
    and biased variance; with ``affine`` (on by default, as in nn.GroupNorm), then a learned
    scale and shift per channel. Features (C,) or images (C, H, W)."""

    kind: ClassVar[str] = "group_norm"
    framework_classes = {"torch": "torch.nn.GroupNorm"}
    torch_modules = ("torch.nn.GroupNorm",)
    parity_cases = {
        "group_norm": ParityCase({"x": [6, 3, 3]}, {"groups": 2}),
        "group_norm_features_no_affine": ParityCase({"x": [6]}, {"groups": 3, "affine": False}),
    }
    groups: int
    eps: float = 1e-5
    affine: bool = True

    def check(self, name: str) -> None:
        positive(name, groups=self.groups)
        check_eps(name, self.eps)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "group_norm", shape, (1, 3), "normalise features (C,) or images (C, H, W)")
        if shape[0] % self.groups:
            raise SpecError(
                name,
                f"{shape[0]} channels do not split into {self.groups} groups of equal size",
                "use a number of groups that divides the channel count",
            )
        if math.prod(shape) // self.groups < 2:
            raise SpecError(
                name,
                f"each of the {self.groups} groups holds one value per sample",
                "use fewer groups",
            )
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"weight": (channels,), "bias": (channels,)} if self.affine else {}

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {
            "num_groups": self.groups,
            "num_channels": info.in_shape[0],
            "eps": self.eps,
            "affine": self.affine,
        }

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return {"groups": module.num_groups, "eps": float(module.eps), "affine": module.affine}


@dataclass(frozen=True)
class LayerNorm(SampleNorm):
    """Layer norm (Ba et al., 2016) over each sample's whole shape: all its values normalised
    with their own mean and biased variance; with ``affine`` (on by default), then a learned
    scale and shift per value, of the sample's shape: nn.LayerNorm(x.shape[1:]).

    nn.LayerNorm also normalises over the last axes only (a normalized_shape shorter than the
    sample's); gx import refuses that with the fix.
    """

    kind: ClassVar[str] = "layer_norm"
    framework_classes = {"torch": "torch.nn.LayerNorm"}
    torch_modules = ("torch.nn.LayerNorm",)
    parity_cases = {
        "layer_norm": ParityCase({"x": [3, 4, 4]}),
        "layer_norm_features_no_affine_eps_0.1": ParityCase(
            {"x": [6]}, {"affine": False, "eps": 0.1}
        ),
    }
    eps: float = 1e-5
    affine: bool = True

    def check(self, name: str) -> None:
        check_eps(name, self.eps)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        if math.prod(shape) < 2:
            raise SpecError(
                name, f"layer_norm needs more than one value per sample, got {shape}", "remove it"
            )
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        shape = inputs[0].shape
        return {"weight": shape, "bias": shape} if self.affine else {}

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {
            "normalized_shape": info.in_shape,
            "eps": self.eps,
            "elementwise_affine": self.affine,
        }

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if module.elementwise_affine and module.bias is None:
            raise Unsupported(
                "has bias=False; gx's layer_norm learns a scale and a shift, or neither "
                "(elementwise_affine=False)"
            )
        return {"eps": float(module.eps), "affine": bool(module.elementwise_affine)}

    @classmethod
    def check_torch_input(cls, module: Any, value: Value) -> None:
        normalized = tuple(module.normalized_shape)
        if not value.is_label and normalized != value.shape:
            raise Unsupported(
                f"normalizes over the last axes {normalized} of samples of shape {value.shape}; "
                f"gx's layer_norm normalizes each sample whole: nn.LayerNorm({value.shape})"
            )
