"""A layer after shape inference: what the summary table, the layer kinds and the backends read.

It lives with the layer kinds, below gx.spec, because each kind's constructor reads it; gx.spec
builds it when it infers a graph's shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gx.layers.base import Layer, Shape, Value


@dataclass(frozen=True)
class LayerInfo:
    """A node after shape inference: what the summary table and the backends read."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]
    input_values: tuple[Value, ...]
    output: Value
    parameters: dict[str, Shape]
    buffers: dict[str, Shape]

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def in_shape(self) -> Shape:
        return self.input_values[0].shape

    @property
    def classes(self) -> int:
        """Class count of the label input (label layers only)."""
        return next(value.classes for value in self.input_values if value.is_label)

    @property
    def parameter_count(self) -> int:
        total = 0
        for shape in self.parameters.values():
            count = 1
            for dim in shape:
                count *= dim
            total += count
        return total
