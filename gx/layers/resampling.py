"""Layers that enlarge images: upsampling by an integer scale, and the pixel shuffle that moves
channels into space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, argument, need_rank, positive
from gx.layers.importing import Context, Unsupported, float_shape
from gx.values import is_number

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

UPSAMPLE_MODES = ("nearest", "bilinear")
# PyTorch's nearest upsampling finds source pixels by multiplying by 1/scale in float32: that
# is i // scale for every scale up to 40, and misses it from 41 on (tests/test_semantics.py)
MAX_SCALE = 32


def bilinear_taps(size: int, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gx's bilinear upsampling along one axis of ``size`` pixels: for each of the
    ``size * scale`` output positions, the two input positions it reads and their weights.

    Pixels are squares with their values at the centres (PyTorch's align_corners=False): output
    position o samples the input at s = (o + 0.5) / scale - 0.5, taken as 0 where it is negative;
    it reads floor(s) and the next pixel (the last pixel twice at the far edge), weighted
    1 - (s - floor(s)) and s - floor(s). Computed in float64, so every backend reads the same
    pixels with the same weights.
    """
    source = np.maximum((np.arange(size * scale) + 0.5) / scale - 0.5, 0.0)
    first = np.floor(source).astype(np.int64)
    second = np.minimum(first + 1, size - 1)
    fraction = source - first
    return first, second, 1.0 - fraction, fraction


def _scale(scale_factor: Any) -> int:
    """The integer scale of PyTorch's scale_factor (a number, or one per axis)."""
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
    if len(set(factors)) != 1:
        raise Unsupported(
            f"scales height and width by {factors}; gx's upsample scales both alike: give one "
            "scale_factor"
        )
    (factor,) = set(factors)
    if not is_number(factor) or not float(factor).is_integer() or not 2 <= factor <= MAX_SCALE:
        raise Unsupported(
            f"scales by {factor}; gx's upsample takes a whole scale_factor from 2 to {MAX_SCALE}"
        )
    return int(factor)


def _upsample_arguments(
    size: Any, scale_factor: Any, mode: str, align_corners: bool | None, fix_size: str
) -> dict[str, Any]:
    """The upsample arguments of nn.Upsample's or F.interpolate's settings."""
    if size is not None:
        raise Unsupported(f"gives an output size; gx's upsample takes an integer scale: {fix_size}")
    if mode == "nearest-exact":
        mode = "nearest"  # floor((o + 0.5) / scale) is o // scale for an integer scale
    if mode not in UPSAMPLE_MODES:
        raise Unsupported(f"uses mode '{mode}'; gx's upsample is 'nearest' or 'bilinear'")
    if mode == "bilinear" and align_corners:
        raise Unsupported(
            "aligns corners (align_corners=True); gx's bilinear upsampling puts pixel values "
            "at pixel centres (align_corners=False, PyTorch's default), which samples other "
            "points: write the network with nn.Upsample(scale_factor=2, mode='bilinear')"
        )
    return {"scale": _scale(scale_factor), "mode": mode}


@dataclass(frozen=True)
class Upsample(Layer):
    """Enlarges (C, H, W) to (C, H * scale, W * scale) for a whole scale from 2 to 32.

    ``nearest``: output pixel (i, j) is input pixel (i // scale, j // scale). ``bilinear``:
    interpolates between the two nearest input pixels along the width, then along the height,
    with pixel values at pixel centres and the edge pixels repeated (``bilinear_taps``; PyTorch's
    nn.Upsample with align_corners=False, its default, which Jittor's nn.Upsample shares).
    """

    kind: ClassVar[str] = "upsample"
    framework_classes = {"torch": "torch.nn.Upsample"}
    # nn.UpsamplingBilinear2d is listed for its refusal: it aligns corners, which gx does not
    torch_modules = (
        "torch.nn.Upsample",
        "torch.nn.UpsamplingNearest2d",
        "torch.nn.UpsamplingBilinear2d",
    )
    torch_functions = ("torch.nn.functional.interpolate",)
    parity_cases = {
        "upsample_nearest": ParityCase({"x": [2, 3, 4]}, {"scale": 2}),
        "upsample_bilinear": ParityCase({"x": [2, 3, 4]}, {"scale": 2, "mode": "bilinear"}),
        # thirds: weights that float32 rounds
        "upsample_bilinear_x3": ParityCase({"x": [2, 3, 3]}, {"scale": 3, "mode": "bilinear"}),
    }
    scale: int
    mode: str = "nearest"

    def check(self, name: str) -> None:
        positive(name, scale=self.scale)
        if not 2 <= self.scale <= MAX_SCALE:
            raise SpecError(
                name,
                f"scale must be from 2 to {MAX_SCALE}, got {self.scale}",
                "use e.g. scale: 2; chain two upsample layers for a larger factor",
            )
        if self.mode not in UPSAMPLE_MODES:
            raise SpecError(
                name,
                f"mode must be nearest or bilinear, got {self.mode!r}",
                "write mode: nearest or mode: bilinear",
            )

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "upsample", shape, (3,), "reshape the input to (channels, height, width)")
        channels, height, width = shape
        return (channels, height * self.scale, width * self.scale)

    def flops(self, info: LayerInfo) -> int:
        return 0  # elementwise: at most two products per output value and axis

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        corners = {"align_corners": False} if self.mode == "bilinear" else {}
        return {"scale_factor": float(self.scale), "mode": self.mode, **corners}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return _upsample_arguments(
            module.size,
            module.scale_factor,
            module.mode,
            module.align_corners,
            "give scale_factor (the output size over the input size) instead of size",
        )

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        if argument(args, kwargs, 6, "antialias", False):
            raise Unsupported("filters with antialias=True; gx's upsample does not: drop it")
        size = argument(args, kwargs, 1, "size", None)
        height_width = float_shape(args[0])[1:]
        arguments = _upsample_arguments(
            size,
            argument(args, kwargs, 2, "scale_factor", None),
            argument(args, kwargs, 3, "mode", "nearest"),
            argument(args, kwargs, 4, "align_corners", None),
            f"give scale_factor (the output size {size} over the input size "
            f"{tuple(height_width)}) instead of size",
        )
        return context.layer(node, cls.kind, [context.tensor(args[0])], **arguments)


@dataclass(frozen=True)
class PixelShuffle(Layer):
    """Moves channels into space: (C * r * r, H, W) -> (C, H * r, W * r) for factor r, in
    PyTorch's channel order: output[c, h * r + i, w * r + j] = input[c * r * r + i * r + j, h, w].
    Only moves values, so both backends give the same numbers exactly."""

    kind: ClassVar[str] = "pixel_shuffle"
    framework_classes = {"torch": "torch.nn.PixelShuffle", "jittor": "jittor.nn.PixelShuffle"}
    torch_modules = ("torch.nn.PixelShuffle",)
    torch_functions = ("torch.nn.functional.pixel_shuffle",)
    parity_cases = {"pixel_shuffle": ParityCase({"x": [8, 3, 2]}, {"factor": 2})}
    factor: int

    def check(self, name: str) -> None:
        positive(name, factor=self.factor)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(
            name, "pixel_shuffle", shape, (3,), "reshape the input to (channels, height, width)"
        )
        channels, height, width = shape
        block = self.factor * self.factor
        if channels % block:
            raise SpecError(
                name,
                f"pixel_shuffle with factor {self.factor} needs channels divisible by {block}, "
                f"got {channels}",
                f"give the layer before it a multiple of {block} channels",
            )
        return (channels // block, height * self.factor, width * self.factor)

    def flops(self, info: LayerInfo) -> int:
        return 0

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"upscale_factor": self.factor}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return {"factor": int(module.upscale_factor)}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        factor = int(argument(args, kwargs, 1, "upscale_factor", 1))
        return context.layer(node, cls.kind, [context.tensor(args[0])], factor=factor)
