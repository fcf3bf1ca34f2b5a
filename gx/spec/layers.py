"""The layer kinds a gx spec can use, each one a small frozen dataclass.

A layer knows three framework-free things: the per-sample shape it produces from its input
shapes, the shapes of its parameters and buffers (in PyTorch's layouts, which Jittor shares), and
how to check its arguments. Shapes never include the batch dimension. A label input has the shape
``()`` and a class count; only the label layers accept it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from gx.errors import SpecError
from gx.values import is_whole

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Value:
    """What flows along an edge of the graph: a float tensor or an integer label."""

    shape: Shape
    classes: int = 0  # > 0 only for integer class labels

    @property
    def is_label(self) -> bool:
        return self.classes > 0

    def describe(self) -> str:
        if self.is_label:
            return f"integer labels ({self.classes} classes)"
        return "(" + ", ".join(str(d) for d in self.shape) + ")"


@dataclass(frozen=True)
class Layer:
    """Base class. ``kind`` is the name used in spec files."""

    kind: ClassVar[str] = ""
    arity: ClassVar[int] = 1  # number of inputs; 0 means "two or more"
    accepts_labels: ClassVar[bool] = False

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


def _need_rank(name: str, kind: str, shape: Shape, ranks: tuple[int, ...], fix: str) -> None:
    if len(shape) not in ranks:
        wanted = " or ".join(f"{r}-D" for r in ranks)
        raise SpecError(name, f"{kind} needs a {wanted} input per sample, got shape {shape}", fix)


def _positive(name: str, **values: int) -> None:
    for arg, value in values.items():
        if not is_whole(value) or value < 1:
            raise SpecError(
                name,
                f"'{arg}' must be a positive integer, got {value!r}",
                f"set '{arg}' to an integer >= 1",
            )


def _non_negative(name: str, **values: int) -> None:
    for arg, value in values.items():
        if not is_whole(value) or value < 0:
            raise SpecError(
                name,
                f"'{arg}' must be an integer >= 0, got {value!r}",
                f"set '{arg}' to an integer >= 0",
            )


def _power_iteration_vector(spectral_norm: bool, out: int) -> dict[str, Shape]:
    """Spectral normalization (Miyato et al., 2018), gx's one definition for both backends.

    The weight W, viewed as a matrix (out, everything else), is used as W / sigma, where sigma
    estimates W's largest singular value with the buffer u (out,), a unit vector drawn from the
    spec's seeded initialisation. In training mode every forward pass first takes one power
    iteration, without gradients: v = normalize(W^T u), then u = normalize(W v) is stored. Then
    sigma = u . (W v), differentiated through W only. In eval mode u is not updated:
    v = normalize(W^T u) and sigma = u . (W v). normalize(x) = x / max(|x|, 1e-12).
    """
    return {"sn_u": (out,)} if spectral_norm else {}


@dataclass(frozen=True)
class Linear(Layer):
    kind: ClassVar[str] = "linear"
    out: int
    bias: bool = True
    spectral_norm: bool = False  # the weight divided by its largest singular value (see below)

    def check(self, name: str) -> None:
        _positive(name, out=self.out)

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        return _power_iteration_vector(self.spectral_norm, self.out)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        _need_rank(name, "linear", shape, (1,), "add a 'flatten' layer before it")
        return (self.out,)

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {"weight": (self.out, inputs[0].shape[0])}
        if self.bias:
            params["bias"] = (self.out,)
        return params


Padding = Union[int, str]


@dataclass(frozen=True)
class Conv2d(Layer):
    kind: ClassVar[str] = "conv2d"
    out: int
    kernel: int
    stride: int = 1
    padding: Padding = 0  # an integer, or "same" (stride 1, odd kernel)
    bias: bool = True
    spectral_norm: bool = False

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        return _power_iteration_vector(self.spectral_norm, self.out)

    def check(self, name: str) -> None:
        _positive(name, out=self.out, kernel=self.kernel, stride=self.stride)
        if self.padding == "same":
            if self.stride != 1 or self.kernel % 2 == 0:
                raise SpecError(
                    name,
                    "padding 'same' on conv2d needs stride 1 and an odd kernel",
                    "give an integer padding instead",
                )
        else:
            _non_negative(name, padding=int(self.padding))

    def pad(self) -> int:
        return (self.kernel - 1) // 2 if self.padding == "same" else int(self.padding)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        _need_rank(name, "conv2d", shape, (3,), "reshape the input to (channels, height, width)")
        _, height, width = shape
        sizes = [
            (size + 2 * self.pad() - self.kernel) // self.stride + 1 for size in (height, width)
        ]
        if min(sizes) < 1:
            raise SpecError(
                name,
                f"kernel {self.kernel} with padding {self.pad()} does not fit the input {shape}",
                "use a smaller kernel or more padding",
            )
        return (self.out, sizes[0], sizes[1])

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {
            "weight": (self.out, inputs[0].shape[0], self.kernel, self.kernel)
        }
        if self.bias:
            params["bias"] = (self.out,)
        return params


@dataclass(frozen=True)
class ConvTranspose2d(Layer):
    kind: ClassVar[str] = "conv_transpose2d"
    out: int
    kernel: int
    stride: int = 1
    padding: Padding = 0  # an integer, or "same": output size = input size x stride
    output_padding: int = 0
    bias: bool = True

    def check(self, name: str) -> None:
        _positive(name, out=self.out, kernel=self.kernel, stride=self.stride)
        if self.padding == "same":
            if self.output_padding != 0:
                raise SpecError(
                    name, "padding 'same' computes output_padding itself", "remove 'output_padding'"
                )
            if self.kernel < self.stride:
                raise SpecError(
                    name,
                    "padding 'same' needs kernel >= stride",
                    "use a larger kernel or integer padding",
                )
            if self.stride == 1 and self.kernel % 2 == 0:
                # an odd kernel - stride needs output_padding 1, which must stay below the stride
                raise SpecError(
                    name,
                    "padding 'same' with stride 1 needs an odd kernel",
                    "use an odd kernel or integer padding",
                )
        else:
            _non_negative(name, padding=int(self.padding), output_padding=self.output_padding)
        if self.output_padding >= self.stride:
            raise SpecError(
                name,
                f"output_padding {self.output_padding} must be smaller than stride {self.stride}",
                "lower output_padding",
            )

    def pads(self) -> tuple[int, int]:
        """(padding, output_padding). 'same' solves (n-1)s - 2p + k + op = n*s for p, op >= 0.

        Of the (n-1)s + k pixels a side that the transposed convolution scatters to, 'same' cuts
        p = ceil((k-s)/2) before and p - op = floor((k-s)/2) after (k5 s2: 2 before, 1 after), as
        PyTorch's and Jittor's layers can. TensorFlow's SAME, the adjoint of its forward SAME
        convolution, cuts floor before and ceil after (k5 s2: 1 before, 2 after): the same size,
        shifted by one pixel when k - s is odd (tests/test_references.py measures both).
        """
        if self.padding != "same":
            return int(self.padding), self.output_padding
        excess = self.kernel - self.stride
        padding = (excess + 1) // 2
        return padding, 2 * padding - excess

    def output_shape(self, name: str, shape: Shape) -> Shape:
        _need_rank(
            name,
            "conv_transpose2d",
            shape,
            (3,),
            "add a 'reshape' layer to (channels, height, width) before it",
        )
        padding, output_padding = self.pads()
        _, height, width = shape
        sizes = [
            (size - 1) * self.stride - 2 * padding + self.kernel + output_padding
            for size in (height, width)
        ]
        if min(sizes) < 1:
            raise SpecError(
                name, f"padding {padding} leaves no output for input {shape}", "use less padding"
            )
        return (self.out, sizes[0], sizes[1])

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {
            "weight": (inputs[0].shape[0], self.out, self.kernel, self.kernel)
        }
        if self.bias:
            params["bias"] = (self.out,)
        return params


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch norm over features (C,) or channels (C, H, W); 1d or 2d follows the input.

    gx's definition (both backends): normalise with the biased batch variance computed in two
    passes, and store the *unbiased* variance in ``running_var``, as PyTorch does;
    running = (1 - momentum) * running + momentum * batch.
    """

    kind: ClassVar[str] = "batch_norm"
    eps: float = 1e-5
    momentum: float = 0.1

    def check(self, name: str) -> None:
        if not isinstance(self.eps, (int, float)) or self.eps <= 0:
            raise SpecError(name, f"eps must be > 0, got {self.eps!r}", "use e.g. 1e-5")
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum <= 1:
            raise SpecError(
                name, f"momentum must be in [0, 1], got {self.momentum!r}", "use e.g. 0.1"
            )

    def output_shape(self, name: str, shape: Shape) -> Shape:
        _need_rank(name, "batch_norm", shape, (1, 3), "normalise features (C,) or images (C, H, W)")
        return shape

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"weight": (channels,), "bias": (channels,)}

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        channels = inputs[0].shape[0]
        return {"running_mean": (channels,), "running_var": (channels,)}


def _label_input(name: str, kind: str, value: Value) -> None:
    if not value.is_label:
        raise SpecError(
            name,
            f"{kind} needs integer labels, got a tensor {value.describe()}",
            "feed it a label input (declared with 'classes:')",
        )


@dataclass(frozen=True)
class Embedding(Layer):
    """A learned vector per class. Indices must be integers in both backends."""

    kind: ClassVar[str] = "embedding"
    accepts_labels: ClassVar[bool] = True
    dim: int

    def check(self, name: str) -> None:
        _positive(name, dim=self.dim)

    def output(self, name: str, inputs: list[Value]) -> Value:
        _label_input(name, "embedding", inputs[0])
        return Value((self.dim,))

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        return {"weight": (inputs[0].classes, self.dim)}


@dataclass(frozen=True)
class OneHot(Layer):
    """Integer label -> one-hot vector (classes,)."""

    kind: ClassVar[str] = "one_hot"
    accepts_labels: ClassVar[bool] = True

    def output(self, name: str, inputs: list[Value]) -> Value:
        _label_input(name, "one_hot", inputs[0])
        return Value((inputs[0].classes,))


@dataclass(frozen=True)
class LabelMap(Layer):
    """Integer label -> one-hot broadcast over an image: (classes, height, width)."""

    kind: ClassVar[str] = "label_map"
    accepts_labels: ClassVar[bool] = True
    size: tuple[int, int]

    def check(self, name: str) -> None:
        if len(self.size) != 2:
            raise SpecError(
                name,
                f"size must be [height, width], got {list(self.size)}",
                "write e.g. size: [28, 28]",
            )
        _positive(name, height=self.size[0], width=self.size[1])

    def output(self, name: str, inputs: list[Value]) -> Value:
        _label_input(name, "label_map", inputs[0])
        return Value((inputs[0].classes, self.size[0], self.size[1]))


@dataclass(frozen=True)
class ReLU(Layer):
    kind: ClassVar[str] = "relu"


@dataclass(frozen=True)
class LeakyReLU(Layer):
    kind: ClassVar[str] = "leaky_relu"
    slope: float = 0.01


@dataclass(frozen=True)
class Tanh(Layer):
    """gx's tanh backward is g * (1 - y^2): finite for every input (Jittor's default is not)."""

    kind: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class Sigmoid(Layer):
    """1 / (1 + exp(-x)) without clamping the input; backward g * (1 - y) * y."""

    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True)
class Dropout(Layer):
    """Zeroes each element with probability p and scales the rest by 1/(1-p).

    Active exactly when the model is in training mode. The masks come from gx's seeded numpy RNG
    (the model's mask source), so both backends drop the same elements.
    """

    kind: ClassVar[str] = "dropout"
    p: float = 0.5

    def check(self, name: str) -> None:
        if not isinstance(self.p, (int, float)) or not 0 <= self.p < 1:
            raise SpecError(name, f"p must be in [0, 1), got {self.p!r}", "use e.g. p: 0.4")


@dataclass(frozen=True)
class Flatten(Layer):
    kind: ClassVar[str] = "flatten"

    def output_shape(self, name: str, shape: Shape) -> Shape:
        size = 1
        for dim in shape:
            size *= dim
        return (size,)


@dataclass(frozen=True)
class Reshape(Layer):
    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...]

    def check(self, name: str) -> None:
        _positive(name, **{f"shape[{i}]": d for i, d in enumerate(self.shape)})

    def output_shape(self, name: str, shape: Shape) -> Shape:
        size_in = 1
        for dim in shape:
            size_in *= dim
        size_out = 1
        for dim in self.shape:
            size_out *= dim
        if size_in != size_out:
            raise SpecError(
                name,
                f"cannot reshape {shape} ({size_in} values) to {self.shape} ({size_out} values)",
                "make the target shape hold the same number of values",
            )
        return tuple(self.shape)


@dataclass(frozen=True)
class Concat(Layer):
    """Joins its inputs along the first per-sample axis (features or channels)."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int] = 0

    def output(self, name: str, inputs: list[Value]) -> Value:
        first = inputs[0].shape
        for value in inputs:
            if value.is_label:
                raise SpecError(
                    name,
                    "concat got integer labels",
                    "pass them through one_hot, label_map or embedding first",
                )
            if len(value.shape) != len(first) or value.shape[1:] != first[1:]:
                shapes = ", ".join(v.describe() for v in inputs)
                raise SpecError(
                    name,
                    f"concat needs equal sizes after the first axis, got {shapes}",
                    "resize the branches so only their channel counts differ",
                )
        return Value((sum(v.shape[0] for v in inputs),) + first[1:])


@dataclass(frozen=True)
class Add(Layer):
    """The elementwise sum of two or more inputs of one shape (e.g. two scores of a head)."""

    kind: ClassVar[str] = "add"
    arity: ClassVar[int] = 0

    def output(self, name: str, inputs: list[Value]) -> Value:
        if any(value.shape != inputs[0].shape for value in inputs):
            shapes = ", ".join(value.describe() for value in inputs)
            raise SpecError(name, f"add needs inputs of one shape, got {shapes}", "reshape them")
        return Value(inputs[0].shape)


@dataclass(frozen=True)
class Projection(Layer):
    """The projection discriminator's class term (Miyato and Koyama, 2018): the inner product
    of the features h (C,) with a learned vector for the sample's class, <W[label], h>, shape (1,).

    Inputs: [features, label]. Its weight (classes, C) is initialised as a linear layer's
    (not as an embedding's N(0, 1), which would swamp the score it is added to).
    """

    kind: ClassVar[str] = "projection"
    arity: ClassVar[int] = 2
    accepts_labels: ClassVar[bool] = True

    def output(self, name: str, inputs: list[Value]) -> Value:
        features, label = inputs
        if features.is_label or len(features.shape) != 1:
            raise SpecError(
                name,
                f"projection's first input must be features (C,), got {features.describe()}",
                "flatten the features first; write input: [features, label]",
            )
        _label_input(name, "projection's second input", label)
        return Value((1,))

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        features, label = inputs
        return {"weight": (label.classes, features.shape[0])}


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Linear,
        Conv2d,
        ConvTranspose2d,
        BatchNorm,
        Embedding,
        OneHot,
        LabelMap,
        ReLU,
        LeakyReLU,
        Tanh,
        Sigmoid,
        Dropout,
        Flatten,
        Reshape,
        Concat,
        Add,
        Projection,
    )
}
