"""What a layer kind is: one frozen dataclass that holds everything gx knows about it.

A kind's definition is framework-free. It says

- what a spec file may write (its fields) and what it refuses (``check``);
- the per-sample shape it produces (``output`` / ``output_shape``) and the shapes of its
  parameters and buffers, in PyTorch's layouts, which Jittor shares;
- how those start: numpy draws from the spec's seed (``initial_value``, ``initial_buffer``);
- its forward FLOPs per sample (``flops``);
- the keyword arguments of the native layer that computes it (``native_arguments``), and which
  framework class that is where the framework has one (``framework_classes``); a backend adds a
  class of its own only where the framework has none (gx/backends/<name>/layers.py);
- the PyTorch modules and functions ``gx import`` reads as this kind (``torch_modules``,
  ``torch_functions``, ``from_torch_module``, ``from_torch_call``; gx.layers.importing);
- small specs that run it on both backends for the parity tests (``parity_cases``).

Shapes never include the batch dimension. A label input has the shape ``()`` and a class count;
only the layers that say so accept it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.values import is_whole

if TYPE_CHECKING:
    from gx.layers.importing import Context
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Value:
    """What flows along an edge of the graph: a float tensor or an integer label."""

    shape: Shape
    classes: int = 0  # > 0 only for integer class labels
    # A generator's input drawn uniformly in [-1, 1] by the trainer: an InfoGAN code
    uniform: bool = False

    @property
    def is_label(self) -> bool:
        return self.classes > 0

    def describe(self) -> str:
        if self.is_label:
            return f"integer labels ({self.classes} classes)"
        shape = "(" + ", ".join(str(d) for d in self.shape) + ")"
        return f"{shape} uniform in [-1, 1]" if self.uniform else shape


@dataclass(frozen=True)
class ParityCase:
    """A one-layer spec the parity tests run on both backends: its inputs (as a spec writes
    them), the layer's arguments, which inputs it reads (None: the only one), the scale of the
    N(0, 1) float inputs, the initialization scheme, and parameters set to a constant after
    initialization where their initial value would hide the computation (self-attention's
    residual scale starts at 0)."""

    inputs: Mapping[str, Any]
    arguments: Mapping[str, Any] = field(default_factory=dict)
    reads: str | list[str] | None = None
    scale: float = 1.0
    init: str = "default"
    values: Mapping[str, float] = field(default_factory=dict)

    def spec_dict(self, kind: str) -> dict[str, Any]:
        layer: dict[str, Any] = {"name": "layer", "kind": kind, **self.arguments}
        if self.reads is not None:
            layer["input"] = self.reads
        return {"inputs": dict(self.inputs), "layers": [layer], "init": self.init}


@dataclass(frozen=True)
class Layer:
    """Base class of every kind. ``kind`` is the name spec files use."""

    kind: ClassVar[str] = ""
    arity: ClassVar[int] = 1  # number of inputs; 0 means "two or more"
    accepts_labels: ClassVar[bool] = False
    # the output holds exactly the input's values, rearranged (a flatten or reshape): what made
    # those values (a final sigmoid, say) still made the output
    rearranges: ClassVar[bool] = False
    # backend name -> 'package.module.Class', where that framework's own class computes exactly
    # gx's definition from native_arguments(); every other backend supplies a class of its own
    framework_classes: ClassVar[Mapping[str, str]] = {}
    # gx import: the exact PyTorch module classes, and the functions or tensor methods
    # ('torch.nn.functional.relu', 'Tensor.relu'), that compute this kind
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_functions: ClassVar[tuple[str, ...]] = ()
    # where gx import makes this kind without a rule of its own: say how (else leave empty)
    imported_by: ClassVar[str] = ""
    parity_cases: ClassVar[Mapping[str, ParityCase]] = {}

    # -- spec files --------------------------------------------------------------------------
    def check(self, name: str) -> None:
        """Refuse impossible arguments before any shape is computed."""

    def arguments(self) -> dict[str, Any]:
        """The layer's fields, for spec files; spectral_norm only where it is on, so specs
        written before it existed read back unchanged."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "spectral_norm" or getattr(self, f.name)
        }

    # -- shapes ------------------------------------------------------------------------------
    def output(self, name: str, inputs: list[Value]) -> Value:
        (value,) = inputs
        return Value(self.output_shape(name, value.shape))

    def output_shape(self, name: str, shape: Shape) -> Shape:
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        """Trainable tensors, in the order they are initialised."""
        return {}

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        """Non-trainable state saved in checkpoints (batch-norm statistics)."""
        return {}

    # -- initial values ----------------------------------------------------------------------
    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        """A parameter's float64 initial value, drawn from ``rng`` (gx.spec.init).

        ``default``: PyTorch's reset_parameters for linear and convolution layers: uniform with
        bound 1/sqrt(fan_in) for weights and biases, fan_in from the weight's second axis times
        its kernel (a transposed convolution's second axis is its output channels, as in
        PyTorch). ``dcgan``: the DCGAN paper's N(0, 0.02) weights and zero biases.
        """
        if scheme == "dcgan":
            return rng.normal(0.0, 0.02, shape) if key == "weight" else np.zeros(shape)
        weight = info.parameters["weight"]
        bound = 1.0 / math.sqrt(weight[1] * math.prod(weight[2:]))
        return rng.uniform(-bound, bound, shape)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        """A buffer's initial value (float64); kinds with buffers say what it is."""
        raise NotImplementedError(f"{self.kind} has no buffer '{key}'")

    # -- cost --------------------------------------------------------------------------------
    def flops(self, info: LayerInfo) -> int:
        """Forward FLOPs of one sample, two per multiply-add as PyTorch's FlopCounterMode counts
        them; only matrix products and convolutions (and products of the same size) count, the
        elementwise rest is cheap (gx.spec.flops). Every kind states its own. A kind that counts
        FLOPs also computes from rounded operands under train.precision bf16 / fp16
        (gx.precision), through the backends' wrapper: its layer must read its parameters as
        attributes in its forward pass."""
        raise NotImplementedError(f"layer kind '{self.kind}' does not count its FLOPs")

    # -- backends ----------------------------------------------------------------------------
    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        """Constructor keywords of the native layer; PyTorch's names, which jittor.nn's layers
        share, and gx's own layer classes in both backends take the same ones."""
        return {}

    # -- gx import ---------------------------------------------------------------------------
    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        """This kind's arguments for a PyTorch module of ``torch_modules`` (raise
        gx.layers.importing.Unsupported, saying what to change, for settings gx lacks)."""
        return {}

    @classmethod
    def check_torch_input(cls, module: Any, value: Value) -> None:
        """Refuse (gx.layers.importing.Unsupported) a module of ``torch_modules`` whose settings
        do not fit the per-sample ``value`` it is called with, where its settings alone cannot
        tell (nn.LayerNorm's normalized_shape)."""

    @classmethod
    def from_torch_call(cls, context: Context, node: Any, args: tuple, kwargs: dict) -> Any:
        """The value of a traced call of ``torch_functions``, its traced arguments already
        translated: by default a layer of this kind on the first argument."""
        return context.layer(node, cls.kind, [context.tensor(args[0])])


# -- checks shared by the kinds -------------------------------------------------------------------


def need_rank(name: str, kind: str, shape: Shape, ranks: tuple[int, ...], fix: str) -> None:
    if len(shape) not in ranks:
        wanted = " or ".join(f"{r}-D" for r in ranks)
        raise SpecError(name, f"{kind} needs a {wanted} input per sample, got shape {shape}", fix)


def positive(name: str, **values: int) -> None:
    for arg, value in values.items():
        if not is_whole(value) or value < 1:
            raise SpecError(
                name,
                f"'{arg}' must be a positive integer, got {value!r}",
                f"set '{arg}' to an integer >= 1",
            )


def non_negative(name: str, **values: int) -> None:
    for arg, value in values.items():
        if not is_whole(value) or value < 0:
            raise SpecError(
                name,
                f"'{arg}' must be an integer >= 0, got {value!r}",
                f"set '{arg}' to an integer >= 0",
            )


def probability(name: str, p: float) -> None:
    if not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise SpecError(name, f"p must be in [0, 1), got {p!r}", "use e.g. p: 0.4")


def label_input(name: str, kind: str, value: Value) -> None:
    if not value.is_label:
        raise SpecError(
            name,
            f"{kind} needs integer labels, got a tensor {value.describe()}",
            "feed it a label input (declared with 'classes:')",
        )


def argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    """A traced call's argument, given by position or by name."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)
