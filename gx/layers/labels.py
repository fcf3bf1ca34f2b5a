"""Integer class labels made into numbers: one-hot vectors and one-hot label maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Value, argument, label_input, positive
from gx.layers.importing import Context, OneHotCode, Tensor, Unsupported

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

LABELS = {"label": {"classes": 5}}


@dataclass(frozen=True)
class OneHot(Layer):
    """Integer label -> one-hot vector (classes,)."""

    kind: ClassVar[str] = "one_hot"
    accepts_labels: ClassVar[bool] = True
    torch_functions = ("torch.nn.functional.one_hot",)
    parity_cases = {"one_hot": ParityCase(LABELS, reads="label")}

    def output(self, name: str, inputs: list[Value]) -> Value:
        label_input(name, "one_hot", inputs[0])
        return Value((inputs[0].classes,))

    def flops(self, info: LayerInfo) -> int:
        return 0

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"classes": info.classes}

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        """``F.one_hot(labels, C)`` is a code, not yet a layer: a later view may make it a label
        map, and the layer (one_hot or label_map) is made where something first reads it."""
        labels = args[0]
        if not (isinstance(labels, Tensor) and labels.value.is_label):
            raise Unsupported(
                "needs a label input declared as class:N, e.g. --input label=class:10"
            )
        classes = argument(args, kwargs, 1, "num_classes", -1)
        if classes != labels.value.classes:
            raise Unsupported(
                f"makes {classes} classes of '{labels.name}', declared with "
                f"{labels.value.classes}; pass num_classes={labels.value.classes} (or declare "
                f"--input {labels.name}=class:{classes})"
            )
        return OneHotCode(labels, (classes,))


@dataclass(frozen=True)
class LabelMap(Layer):
    """Integer label -> one-hot broadcast over an image: (classes, height, width)."""

    kind: ClassVar[str] = "label_map"
    accepts_labels: ClassVar[bool] = True
    imported_by = "a one-hot code (F.one_hot) viewed as (C, 1, 1) and expanded to (C, H, W)"
    parity_cases = {"label_map": ParityCase(LABELS, {"size": [3, 3]}, reads="label")}
    size: tuple[int, int]

    def check(self, name: str) -> None:
        if len(self.size) != 2:
            raise SpecError(
                name,
                f"size must be [height, width], got {list(self.size)}",
                "write e.g. size: [28, 28]",
            )
        positive(name, height=self.size[0], width=self.size[1])

    def output(self, name: str, inputs: list[Value]) -> Value:
        label_input(name, "label_map", inputs[0])
        return Value((inputs[0].classes, self.size[0], self.size[1]))

    def flops(self, info: LayerInfo) -> int:
        return 0

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"classes": info.classes, "size": self.size}
