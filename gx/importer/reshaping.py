"""Shape arithmetic of view, reshape, flatten, unsqueeze and indexing, in per-sample terms.

gx shapes never include the batch axis, so a traced ``x.view(x.size(0), -1)`` or
``x.view(-1, 128, 7, 7)`` must leave the batch axis where it is; anything that would move
samples into features (or back) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gx.layers.importing import Unsupported

Shape = tuple[int, ...]


@dataclass(frozen=True)
class BatchSize:
    """A traced ``x.size(0)`` or ``x.shape[0]``: the batch size, known only when running."""


@dataclass(frozen=True)
class Sizes:
    """A traced ``x.size()`` or ``x.shape``: the batch size, then ``shape``."""

    shape: Shape

    def item(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise Unsupported("indexes a shape with a slice; index one axis, e.g. x.shape[0]")
        axis = index + len(self.shape) + 1 if index < 0 else index
        if not 0 <= axis <= len(self.shape):
            raise Unsupported(f"asks for axis {index} of a {len(self.shape) + 1}-D tensor")
        return BatchSize() if axis == 0 else self.shape[axis - 1]


def view_target(shape: Shape, sizes: Sequence[Any]) -> Shape:
    """The per-sample shape a ``view``/``reshape`` to ``sizes`` (batch axis included) makes."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    if not sizes:
        raise Unsupported("reshapes to no axes at all")
    first, rest = sizes[0], list(sizes[1:])
    if any(isinstance(size, BatchSize) for size in rest):
        raise Unsupported("moves the batch size away from axis 0; keep it first")
    if not all(isinstance(size, int) for size in rest) or any(
        size < -1 or size == 0 for size in rest
    ):
        raise Unsupported(f"reshapes to {list(sizes)}; gx needs sizes that are known ints")
    count = math.prod(shape)
    if isinstance(first, BatchSize):
        if rest.count(-1) > 1:
            raise Unsupported("has more than one -1")
        if -1 in rest:
            known = math.prod(size for size in rest if size != -1)
            if count % known:
                raise Unsupported(f"cannot reshape {shape} to {list(sizes)}")
            rest[rest.index(-1)] = count // known
    elif first == -1 and -1 not in rest:
        pass  # the batch axis is whatever is left: it stays the batch only if the rest fits
    else:
        raise Unsupported(
            f"reshapes to {list(sizes)}; give the batch axis as x.size(0) or -1, "
            "e.g. x.view(x.size(0), -1) or x.view(-1, 128, 7, 7)"
        )
    if math.prod(rest) != count:
        raise Unsupported(
            f"reshapes each sample's {shape} ({count} values) to {tuple(rest)}, which mixes "
            "samples; make the sizes after the batch axis hold exactly one sample"
        )
    return tuple(rest)


def _axis(index: int, rank: int, operation: str) -> int:
    """A full-tensor axis (batch at 0) of a tensor with ``rank`` axes, checked."""
    axis = index + rank if index < 0 else index
    if not 0 <= axis < rank:
        raise Unsupported(f"has no axis {index} to {operation}")
    if axis == 0:
        raise Unsupported(f"would {operation} the batch axis; use an axis >= 1")
    return axis


def flatten_target(shape: Shape, start: int, end: int) -> Shape:
    rank = len(shape) + 1
    if _axis(start, rank, "flatten") != 1 or _axis(end, rank, "flatten") != rank - 1:
        raise Unsupported(
            f"flattens axes {start}..{end}; gx flattens each sample whole: flatten(1)"
        )
    return (math.prod(shape),)


def unsqueeze_target(shape: Shape, index: int) -> Shape:
    axis = _axis(index, len(shape) + 2, "unsqueeze")
    return shape[: axis - 1] + (1,) + shape[axis - 1 :]


def squeeze_target(shape: Shape, indices: Sequence[int]) -> Shape:
    if not indices:
        raise Unsupported(
            "squeezes without an axis, which also drops the batch axis when a batch holds "
            "one sample; name the axis, e.g. squeeze(1)"
        )
    axes = {_axis(index, len(shape) + 1, "squeeze") - 1 for index in indices}
    return tuple(size for axis, size in enumerate(shape) if not (axis in axes and size == 1))


def index_target(shape: Shape, index: Any) -> Shape:
    """``x[:, :, None, None]``: whole slices and new axes only."""
    items = index if isinstance(index, tuple) else (index,)
    whole = slice(None, None, None)
    if not items or items[0] != whole or any(item is not None and item != whole for item in items):
        raise Unsupported(
            "indexes a tensor; gx imports only whole slices and new axes, e.g. x[:, :, None]"
        )
    remaining, target = list(shape), []
    for item in items[1:]:
        if item is None:
            target.append(1)
        elif remaining:
            target.append(remaining.pop(0))
        else:
            raise Unsupported("indexes more axes than the tensor has")
    return tuple(target + remaining)


def expand_target(shape: Shape, sizes: Sequence[Any], repeat: bool) -> Shape:
    """``expand(-1, -1, H, W)`` / ``repeat(1, 1, H, W)`` of axes of size 1."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    if len(sizes) != len(shape) + 1:
        raise Unsupported(f"gives {len(sizes)} sizes for a {len(shape) + 1}-D tensor")
    first, rest = sizes[0], sizes[1:]
    if not (isinstance(first, BatchSize) or first == (1 if repeat else -1)):
        raise Unsupported("changes the batch axis; keep it (-1 in expand, 1 in repeat)")
    target = []
    for size, new in zip(shape, rest):
        if not isinstance(new, int):
            raise Unsupported("takes sizes that are not known ints")
        grown = size * new if repeat else (size if new == -1 else new)
        if grown != size and size != 1:
            raise Unsupported(f"grows an axis of size {size}; gx broadcasts only axes of size 1")
        target.append(grown)
    return tuple(target)
