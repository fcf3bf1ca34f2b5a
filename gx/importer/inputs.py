"""``--input NAME=DECLARATION``: what each argument of a module's forward is.

Four declarations, one per kind of argument a hand-written GAN takes::

    z=100  image=1x28x28     a float tensor of that per-sample shape
    label=class:10           integer class labels (N,), int64
    label=onehot:10x1x1      the one-hot code of integer labels, as the module receives it
                             (10, or 10xHxW for a label map): the spec takes the labels and
                             computes the code itself with a one_hot or label_map layer
    code=uniform:2           a float tensor the trainer draws uniformly in [-1, 1] (an
                             InfoGAN generator's continuous code)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from gx.errors import GxError

_SHAPE = re.compile(r"^[1-9][0-9]*(x[1-9][0-9]*)*$")
KINDS = ("tensor", "class", "onehot", "uniform")

Declaration = Union[str, Sequence[int]]


@dataclass(frozen=True)
class InputSpec:
    """One argument of forward: its name in the spec, and what it holds."""

    name: str
    kind: str  # "tensor", "class", "onehot" or "uniform"
    shape: tuple[int, ...]  # per sample; () for class labels
    classes: int = 0  # class labels and one-hot codes

    @property
    def is_float(self) -> bool:
        """A float tensor the module receives as it is (a uniform code included)."""
        return self.kind in ("tensor", "uniform")


def one_hot_code(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """float32 one-hot vectors of ``labels``, each broadcast to ``shape`` = (classes, ...)."""
    classes, rest = shape[0], shape[1:]
    vectors = np.eye(classes, dtype=np.float32)[labels]
    return np.broadcast_to(
        vectors.reshape(len(labels), classes, *[1] * len(rest)), (len(labels), *shape)
    ).copy()


def parse_input(text: str) -> tuple[str, str]:
    """``NAME=DECLARATION`` as given on the command line."""
    name, equals, declaration = text.partition("=")
    if not equals or not name.strip() or not declaration.strip():
        raise GxError(
            f"--input {text!r}: expected NAME=DECLARATION, e.g. --input z=100, "
            "--input label=class:10 or --input image=1x28x28"
        )
    return name.strip(), declaration.strip()


def input_spec(name: str, declaration: Declaration) -> InputSpec:
    """Check one declaration; a sequence of ints is a float tensor's shape."""
    if not isinstance(declaration, str):
        declaration = "x".join(str(dim) for dim in declaration)
    kind, colon, shape_text = declaration.partition(":")
    if not colon:
        kind, shape_text = "tensor", declaration
    wrong = GxError(
        f"input '{name}': cannot read {declaration!r}; write a shape like 100 or 1x28x28, "
        "class:10 for integer labels, onehot:10 / onehot:10x28x28 for their one-hot code, or "
        "uniform:2 for a code drawn in [-1, 1]"
    )
    if kind not in KINDS or not _SHAPE.match(shape_text):
        raise wrong
    shape = tuple(int(dim) for dim in shape_text.split("x"))
    if kind == "class":
        if len(shape) != 1 or shape[0] < 2:
            raise wrong
        return InputSpec(name, kind, (), shape[0])
    if kind == "onehot" and (shape[0] < 2 or len(shape) not in (1, 3)):
        raise GxError(
            f"input '{name}': a one-hot code is (classes,) or (classes, height, width), "
            f"got {declaration!r}; write e.g. onehot:10 or onehot:10x28x28"
        )
    return InputSpec(name, kind, shape, shape[0] if kind == "onehot" else 0)


def input_specs(declarations: Mapping[str, Declaration]) -> list[InputSpec]:
    """The declarations in forward's argument order (a mapping keeps the order it was given)."""
    if not declarations:
        raise GxError(
            "no inputs declared; give one --input per argument of forward, in its order, "
            "e.g. --input z=100 --input label=class:10"
        )
    return [input_spec(name, declaration) for name, declaration in declarations.items()]
