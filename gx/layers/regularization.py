"""Dropout of elements or of whole channels, with masks from gx's seeded numpy stream so that
both backends drop alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.layers.base import Layer, ParityCase, Shape, argument, need_rank, probability
from gx.layers.importing import Context, Unsupported

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource


def functional_dropout(
    kind: str, module: str, context: Context, node: Any, args: tuple, kwargs: dict
) -> Any:
    """F.dropout(x, p, training) and F.dropout2d: a layer of ``kind`` where the call drops
    exactly in training mode, nothing where it never drops; refused where it stays active in
    eval mode, which gx's dropouts never are."""
    p = float(argument(args, kwargs, 1, "p", 0.5))
    training = argument(args, kwargs, 2, "training", True)
    if context.dropout_in_eval(node):
        raise Unsupported(
            f"stays active in eval mode; gx's {kind} is active exactly in training mode: "
            f"pass training=self.training, or use {module}"
        )
    if not training:
        return context.tensor(args[0])  # off in training mode too: it computes nothing
    return context.layer(node, kind, [context.tensor(args[0])], p=p)


@dataclass(frozen=True)
class Dropout(Layer):
    """Zeroes each element with probability p and scales the rest by 1/(1-p).

    Active exactly when the model is in training mode. The masks come from gx's seeded numpy RNG
    (the model's mask source), so both backends drop the same elements.
    """

    kind: ClassVar[str] = "dropout"
    torch_modules = ("torch.nn.Dropout",)
    torch_functions = ("torch.nn.functional.dropout",)
    parity_cases = {"dropout": ParityCase({"x": [64]}, {"p": 0.4})}
    torch_module_name: ClassVar[str] = "nn.Dropout"  # as refusals name it
    p: float = 0.5

    def check(self, name: str) -> None:
        probability(name, self.p)

    def flops(self, info: LayerInfo) -> int:
        return 0

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"p": self.p, "masks": masks}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        # nn.Dropout is active exactly in training mode, as gx's dropout is
        return {"p": float(module.p)}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        return functional_dropout(cls.kind, cls.torch_module_name, context, node, args, kwargs)


@dataclass(frozen=True)
class Dropout2d(Dropout):
    """Zeroes each channel of each image (C, H, W) whole with probability p and scales the
    rest by 1/(1-p).

    Active exactly when the model is in training mode. The masks come from gx's seeded numpy
    RNG (the model's mask source, one draw per sample and channel: MaskSource.channel_mask), so
    both backends drop the same channels. Everything else is dropout's.
    """

    kind: ClassVar[str] = "dropout2d"
    torch_modules = ("torch.nn.Dropout2d",)
    torch_functions = ("torch.nn.functional.dropout2d",)
    parity_cases = {"dropout2d": ParityCase({"x": [16, 3, 3]}, {"p": 0.4})}
    torch_module_name: ClassVar[str] = "nn.Dropout2d"

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(
            name,
            "dropout2d",
            shape,
            (3,),
            "give it images (channels, height, width); dropout drops single features",
        )
        return shape
