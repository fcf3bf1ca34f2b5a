"""The layer kinds a gx spec can use, each defined once (gx.layers.base says what a definition
holds), and the registry that maps a spec file's ``kind:`` to its definition.

Adding a kind: write its dataclass in the family module it belongs to (or a new one imported
here), list it in ``_DEFINITIONS``, give a backend a class of its own only where the framework
has none, and add it to docs/layers.md (docs/extending.md walks through it).
"""

from __future__ import annotations

from gx.layers.activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from gx.layers.attention import SelfAttention
from gx.layers.base import Layer, ParityCase, Shape, Value
from gx.layers.convolution import Conv2d, ConvTranspose2d
from gx.layers.dense import Embedding, Linear, Projection
from gx.layers.labels import LabelMap, OneHot
from gx.layers.normalization import (
    BatchNorm,
    ConditionalBatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
)
from gx.layers.pooling import AvgPool2d, GlobalMean, GlobalSum
from gx.layers.regularization import Dropout, Dropout2d
from gx.layers.resampling import PixelShuffle, Upsample
from gx.layers.structure import Add, Concat, Flatten, Multiply, Reshape

_DEFINITIONS: tuple[type[Layer], ...] = (
    Linear,
    Conv2d,
    ConvTranspose2d,
    Upsample,
    PixelShuffle,
    AvgPool2d,
    GlobalSum,
    GlobalMean,
    BatchNorm,
    Embedding,
    OneHot,
    LabelMap,
    ReLU,
    LeakyReLU,
    Tanh,
    Sigmoid,
    Softmax,
    Dropout,
    Dropout2d,
    Flatten,
    Reshape,
    Concat,
    Add,
    Multiply,
    Projection,
    InstanceNorm,
    LayerNorm,
    GroupNorm,
    ConditionalBatchNorm,
    SelfAttention,
)
LAYER_KINDS: dict[str, type[Layer]] = {cls.kind: cls for cls in _DEFINITIONS}

__all__ = ["LAYER_KINDS", "Layer", "ParityCase", "Shape", "Value"]
