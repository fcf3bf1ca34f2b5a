"""The vocabulary that ``gx import`` and the layer definitions share, free of any framework.

gx.importer traces a PyTorch module and walks its graph; where a traced module or call is one a
layer kind names (``Layer.torch_modules`` / ``Layer.torch_functions``), the kind's own
``from_torch_module`` or ``from_torch_call`` says what it becomes. Those rules see traced values
as ``Tensor`` (a spec input or layer output) or ``OneHotCode`` (labels not yet made a layer), add
layers through a ``Context``, and refuse with ``Unsupported``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gx.layers.base import Shape, Value


class Unsupported(Exception):
    """An operation gx cannot import; the message says why and what to write instead."""


@dataclass(frozen=True)
class Tensor:
    """A traced value gx holds: a spec input or a layer's output, and its per-sample value."""

    name: str
    value: Value


@dataclass(frozen=True)
class OneHotCode:
    """The one-hot code of a label input, not yet a layer: ``F.one_hot(label, C).float()``,
    perhaps viewed as (C, 1, 1) and expanded to (C, H, W). gx computes it from the labels with
    one layer, made where a layer first reads it (one_hot for (C,), label_map for (C, H, W))."""

    label: Tensor
    shape: Shape


class Context(Protocol):
    """What import rules need from the walk over the traced graph (gx.importer.translate)."""

    def layer(self, node: Any, kind: str, sources: list[Tensor], **arguments: Any) -> Tensor:
        """A new layer computing ``node``, named after it."""

    def tensor(self, value: Any) -> Tensor:
        """``value`` as a spec value (a one-hot code becomes its layer here)."""

    def dropout_in_eval(self, node: Any) -> bool:
        """Whether this functional dropout is still active when the module is in eval mode."""


def float_shape(value: Any) -> Shape:
    """The per-sample shape of a traced float value (a tensor or a one-hot code)."""
    if isinstance(value, OneHotCode):
        return value.shape
    if isinstance(value, Tensor) and not value.value.is_label:
        return value.value.shape
    raise Unsupported("needs a float tensor here")
