"""Pooling: the average over sliding windows, and the sum or mean over a whole image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.errors import SpecError
from gx.layers.base import (
    Layer,
    ParityCase,
    Shape,
    argument,
    need_rank,
    non_negative,
    positive,
)
from gx.layers.convolution import square
from gx.layers.importing import Context, Tensor, Unsupported, float_shape

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource


def pooled_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """How many windows fit along an axis of ``size`` pixels, padded on both sides; a window
    that would stick out of the padded input is dropped (PyTorch's ceil_mode=False)."""
    return (size + 2 * padding - kernel) // stride + 1


def _avg_pool_arguments(
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Any,
) -> dict[str, Any]:
    """The avg_pool2d arguments of nn.AvgPool2d's or F.avg_pool2d's settings."""
    pad = square(padding, "padding")
    if ceil_mode:
        raise Unsupported(
            "keeps a last partial window (ceil_mode=True); gx's avg_pool2d drops it: "
            "set ceil_mode=False, or pad the input so the windows fit"
        )
    if not count_include_pad and pad > 0:
        raise Unsupported(
            "leaves the padded zeros out of each average (count_include_pad=False); gx's "
            "avg_pool2d counts them (PyTorch's default): drop count_include_pad=False"
        )
    if divisor_override is not None:
        raise Unsupported(
            f"divides by {divisor_override} (divisor_override); gx's avg_pool2d divides by "
            "the window's size: drop divisor_override"
        )
    kernel = square(kernel_size, "kernel_size")
    # F.avg_pool2d's stride defaults to None or to an empty list: the kernel size
    step = kernel if stride is None or stride == [] else square(stride, "stride")
    return {"kernel": kernel, "stride": step, "padding": pad}


@dataclass(frozen=True)
class AvgPool2d(Layer):
    """The mean of each kernel x kernel window of (C, H, W), windows ``stride`` apart.

    The input is padded with ``padding`` zeros on each side, and the padded zeros count: every
    window's sum is divided by kernel * kernel (PyTorch's count_include_pad=True, its default,
    and what Jittor 1.3 computes whatever it is asked). Windows that do not fit are dropped
    (ceil_mode=False).
    """

    kind: ClassVar[str] = "avg_pool2d"
    framework_classes = {"torch": "torch.nn.AvgPool2d"}
    torch_modules = ("torch.nn.AvgPool2d",)
    torch_functions = ("torch.nn.functional.avg_pool2d",)
    parity_cases = {
        "avg_pool2d": ParityCase({"x": [2, 6, 4]}, {"kernel": 2}),
        "avg_pool2d_padded": ParityCase({"x": [2, 5, 5]}, {"kernel": 3, "stride": 2, "padding": 1}),
        # one window over the whole image, which Jittor's own AvgPool2d refuses
        "avg_pool2d_whole": ParityCase({"x": [2, 3, 3]}, {"kernel": 3}),
    }
    kernel: int
    stride: int | None = None  # None: the kernel, windows side by side
    padding: int = 0

    def check(self, name: str) -> None:
        positive(name, kernel=self.kernel)
        if self.stride is not None:
            positive(name, stride=self.stride)
        non_negative(name, padding=self.padding)
        if 2 * self.padding > self.kernel:
            raise SpecError(
                name,
                f"padding {self.padding} is more than half the kernel {self.kernel}: a window "
                "could hold only padding",
                "use padding <= kernel // 2",
            )

    def arguments(self) -> dict[str, Any]:
        # an unset stride stays unset in written specs
        return {key: value for key, value in super().arguments().items() if value is not None}

    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "avg_pool2d", shape, (3,), "reshape the input to (channels, height, width)")
        channels, height, width = shape
        sizes = [pooled_size(size, self.kernel, self.step(), self.padding) for size in shape[1:]]
        if min(sizes) < 1:
            raise SpecError(
                name,
                f"kernel {self.kernel} with padding {self.padding} does not fit the input {shape}",
                "use a smaller kernel or more padding",
            )
        return (channels, sizes[0], sizes[1])

    def flops(self, info: LayerInfo) -> int:
        return 0  # sums, no products

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"kernel_size": self.kernel, "stride": self.step(), "padding": self.padding}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return _avg_pool_arguments(
            module.kernel_size,
            module.stride,
            module.padding,
            module.ceil_mode,
            module.count_include_pad,
            module.divisor_override,
        )

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        arguments = _avg_pool_arguments(
            argument(args, kwargs, 1, "kernel_size", None),
            argument(args, kwargs, 2, "stride", None),
            argument(args, kwargs, 3, "padding", 0),
            argument(args, kwargs, 4, "ceil_mode", False),
            argument(args, kwargs, 5, "count_include_pad", True),
            argument(args, kwargs, 6, "divisor_override", None),
        )
        return context.layer(node, cls.kind, [context.tensor(args[0])], **arguments)


IMAGE = {"x": [3, 4, 5]}
SPATIAL_AXES = {2, 3}  # height and width of (N, C, H, W)


def _called(node: Any) -> str:
    """The name of a traced call's function or method: 'sum', 'mean', 'adaptive_avg_pool2d'."""
    return str(getattr(node.target, "__name__", node.target))


@dataclass(frozen=True)
class GlobalPooling(Layer):
    """A reduction of each channel of (C, H, W) over its height and width, to (C,)."""

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, self.kind, shape, (3,), "give it images (channels, height, width)")
        return (shape[0],)

    def flops(self, info: LayerInfo) -> int:
        return 0  # sums, no products

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        """``torch.sum(x, dim=(2, 3))``, ``x.mean([-2, -1], keepdim=True)`` and the like."""
        name = _called(node)
        if kwargs.get("dtype") is not None:
            raise Unsupported(f"converts to {kwargs['dtype']}; gx's {name} keeps the input's type")
        dims = argument(args, kwargs, 1, "dim", None)
        if dims is None:
            raise Unsupported(
                f"takes the {name} of every value, the batch's included; gx's {cls.kind} takes "
                f"each image's: {name}(dim=(2, 3))"
            )
        rank = len(float_shape(args[0])) + 1
        axes = {axis % rank for axis in (dims if isinstance(dims, (tuple, list)) else [dims])}
        if rank != 4 or axes != SPATIAL_AXES:
            raise Unsupported(
                f"takes the {name} over dims {dims} of a {rank}-D tensor; gx's {cls.kind} "
                f"takes it over the height and width of (N, C, H, W): dim=(2, 3)"
            )
        pooled = context.layer(node, cls.kind, [context.tensor(args[0])])
        keepdim = argument(args, kwargs, 2, "keepdim", False)
        return _kept(context, node, pooled) if keepdim else pooled


def _kept(context: Context, node: Any, pooled: Tensor) -> Tensor:
    """The pooled (C,) viewed as (C, 1, 1), as keepdim=True and adaptive pooling give it."""
    return context.layer(node, "reshape", [pooled], shape=(*pooled.value.shape, 1, 1))


@dataclass(frozen=True)
class GlobalSum(GlobalPooling):
    """(C, H, W) -> (C,): the sum of each channel over its height and width (the global pooling
    before an SNGAN discriminator's last linear layer)."""

    kind: ClassVar[str] = "global_sum"
    torch_functions = ("torch.sum", "Tensor.sum")
    parity_cases = {"global_sum": ParityCase(IMAGE)}


@dataclass(frozen=True)
class GlobalMean(GlobalPooling):
    """(C, H, W) -> (C,): the mean of each channel over its height and width, its sum divided
    by H * W."""

    kind: ClassVar[str] = "global_mean"
    torch_functions = ("torch.mean", "Tensor.mean", "torch.nn.functional.adaptive_avg_pool2d")
    parity_cases = {"global_mean": ParityCase(IMAGE)}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        if _called(node) != "adaptive_avg_pool2d":
            return super().from_torch_call(context, node, args, kwargs)
        size = argument(args, kwargs, 1, "output_size", None)
        if size not in (1, (1, 1), [1, 1]):
            raise Unsupported(
                f"pools to {size}; gx pools a whole image to one value per channel "
                "(output_size=1), or windows with F.avg_pool2d"
            )
        pooled = context.layer(node, cls.kind, [context.tensor(args[0])])
        return _kept(context, node, pooled)
