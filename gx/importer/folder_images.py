"""Networks of an import folder whose images are declared in another shape, e.g. flat.

Many single-file GANs give their discriminator the image flattened (``--input image=784``: a
first ``nn.Linear(784, ...)``), or let their generator end in a linear layer of 784 values, while
their data are images. An import folder's experiment trains on images (channels, height,
width), so there the discriminator takes images and first lays each out as it was declared,
and the generator's output is laid out as an image after its last layer: both as PyTorch's
``view`` does, so each network computes what its module computed.
"""

from __future__ import annotations

import dataclasses
import math

from gx.errors import GxError
from gx.layers.structure import Flatten, Reshape
from gx.spec import Layer, ModelSpec, Node, Value

Image = tuple[int, int, int]
OTHER_ROLE = {"generator": "discriminator", "discriminator": "generator"}


def declared_images(role: str, spec: ModelSpec) -> tuple[int, ...]:
    """The per-sample shape of the images ``spec`` reads (a discriminator) or makes."""
    return spec.inputs["image"].shape if role == "discriminator" else spec.output_value.shape


def as_images(role: str, spec: ModelSpec, other: ModelSpec | None) -> tuple[ModelSpec, str]:
    """``spec`` reading or making images of (channels, height, width), and a note saying how,
    when it was declared otherwise (else ``spec`` itself and no note)."""
    declared = declared_images(role, spec)
    if len(declared) == 3:
        return spec, ""
    other_images = declared_images(OTHER_ROLE[role], other) if other is not None else None
    shape = image_shape(math.prod(declared), other_images)
    written = "x".join(str(size) for size in shape)
    if role == "discriminator":
        layout = (
            f"flattens each into the {declared[0]} values"
            if len(declared) == 1
            else f"reshapes each to the {declared}"
        )
        return reading_images(spec, shape), (
            f"the folder's discriminator takes {written} images and {layout} it was declared with"
        )
    return making_images(spec, shape), (
        f"the folder's generator lays out its {declared} output as {written} images"
    )


def image_shape(count: int, other: tuple[int, ...] | None) -> Image:
    """The images of ``count`` values per sample: the other network's, if they hold that many,
    else the square grey (1, H, H) or colour (3, H, H) image of that size (no count is both)."""
    if other is not None and len(other) == 3 and math.prod(other) == count:
        return other[0], other[1], other[2]
    for channels in (1, 3):
        side = math.isqrt(count // channels)
        if channels * side * side == count:
            return channels, side, side
    raise GxError(
        f"an import folder trains on images, and {count} values per sample make no square "
        "1xHxH or 3xHxH image; import the other network into the folder first, or declare "
        "the images as CxHxW"
    )


def _unused(name: str, spec: ModelSpec) -> str:
    taken = {node.name for node in spec.nodes} | set(spec.inputs)
    candidate, suffix = name, 2
    while candidate in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def _layout(shape: tuple[int, ...]) -> Layer:
    """The layer that lays a sample's values out as ``shape``."""
    return Flatten() if len(shape) == 1 else Reshape(shape)


def reading_images(spec: ModelSpec, shape: Image) -> ModelSpec:
    """A discriminator taking images of ``shape``, laid out first as it declared them."""
    declared = spec.inputs["image"].shape
    laid_out = _unused("image_" + ("flat" if len(declared) == 1 else "view"), spec)
    nodes = tuple(
        dataclasses.replace(
            node, inputs=tuple(laid_out if source == "image" else source for source in node.inputs)
        )
        for node in spec.nodes
    )
    inputs = {
        name: Value(shape) if name == "image" else value for name, value in spec.inputs.items()
    }
    first = Node(laid_out, _layout(declared), ("image",))
    return ModelSpec(inputs=inputs, nodes=(first, *nodes), outputs=spec.outputs, init=spec.init)


def making_images(spec: ModelSpec, shape: Image) -> ModelSpec:
    """A generator whose output is laid out as images of ``shape`` by a last layer."""
    image = _unused("image", spec)
    last = Node(image, _layout(shape), (spec.output,))
    return ModelSpec(
        inputs=dict(spec.inputs), nodes=(*spec.nodes, last), outputs=(image,), init=spec.init
    )
