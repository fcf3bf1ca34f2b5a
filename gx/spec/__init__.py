"""Backend-neutral model descriptions: layer kinds, graphs with inferred shapes, initial weights."""

from gx.layers import LAYER_KINDS, Layer, Value
from gx.layers.masks import MaskSource
from gx.spec.graph import LayerInfo, ModelSpec, Node
from gx.spec.init import initial_state
from gx.spec.shapes import example_inputs, shape_text

__all__ = [
    "LAYER_KINDS",
    "Layer",
    "LayerInfo",
    "MaskSource",
    "ModelSpec",
    "Node",
    "Value",
    "example_inputs",
    "initial_state",
    "shape_text",
]
