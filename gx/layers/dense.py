"""Matrix layers: linear, the embedding table, and the projection discriminator's class term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gx.errors import SpecError
from gx.layers.base import Layer, ParityCase, Shape, Value, label_input, need_rank, positive
from gx.layers.importing import Unsupported

if TYPE_CHECKING:
    from gx.layers.info import LayerInfo
    from gx.layers.masks import MaskSource

LABELS = {"label": {"classes": 5}}


def power_iteration_vector(spectral_norm: bool, out: int) -> dict[str, Shape]:
    """Spectral normalization (Miyato et al., 2018), gx's one definition for both backends.

    The weight W, viewed as a matrix (out, everything else), is used as W / sigma, where sigma
    estimates W's largest singular value with the buffer u (out,), a unit vector drawn from the
    spec's seeded initialisation. In training mode every forward pass first takes one power
    iteration, without gradients: v = normalize(W^T u), then u = normalize(W v) is stored. Then
    sigma = u . (W v), differentiated through W only. In eval mode u is not updated:
    v = normalize(W^T u) and sigma = u . (W v). normalize(x) = x / max(|x|, 1e-12).
    """
    return {"sn_u": (out,)} if spectral_norm else {}


def unit_vector(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Spectral normalization's starting u: a standard normal draw, normalised."""
    vector = rng.standard_normal(shape)
    return vector / np.linalg.norm(vector)


@dataclass(frozen=True)
class Linear(Layer):
    kind: ClassVar[str] = "linear"
    torch_modules = ("torch.nn.Linear",)
    parity_cases = {
        "linear": ParityCase({"x": [6]}, {"out": 5}),
        "linear_no_bias": ParityCase({"x": [6]}, {"out": 5, "bias": False}),
        "linear_spectral_norm": ParityCase({"x": [6]}, {"out": 5, "spectral_norm": True}),
    }
    out: int
    bias: bool = True
    spectral_norm: bool = False  # the weight divided by its largest singular value (above)

    def check(self, name: str) -> None:
        positive(name, out=self.out)

    def output_shape(self, name: str, shape: Shape) -> Shape:
        need_rank(name, "linear", shape, (1,), "add a 'flatten' layer before it")
        return (self.out,)

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        params: dict[str, Shape] = {"weight": (self.out, inputs[0].shape[0])}
        if self.bias:
            params["bias"] = (self.out,)
        return params

    def buffers(self, inputs: list[Value]) -> dict[str, Shape]:
        return power_iteration_vector(self.spectral_norm, self.out)

    def initial_buffer(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        return unit_vector(shape, rng)

    def flops(self, info: LayerInfo) -> int:
        out, features = info.parameters["weight"]
        return 2 * out * features

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        # spectral_norm is passed only where it is on: the plain layer is the framework's own
        normalized = {"spectral_norm": True} if self.spectral_norm else {}
        return {
            "in_features": info.in_shape[0],
            "out_features": self.out,
            "bias": self.bias,
            **normalized,
        }

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        return {"out": module.out_features, "bias": module.bias is not None}


@dataclass(frozen=True)
class Embedding(Layer):
    """A learned vector per class, looked up by integer label (N(0, 1) at the start, as
    PyTorch's nn.Embedding). Indices must be integers in both backends."""

    kind: ClassVar[str] = "embedding"
    accepts_labels: ClassVar[bool] = True
    framework_classes = {"torch": "torch.nn.Embedding"}
    torch_modules = ("torch.nn.Embedding",)
    parity_cases = {"embedding": ParityCase(LABELS, {"dim": 4}, reads="label")}
    dim: int

    def check(self, name: str) -> None:
        positive(name, dim=self.dim)

    def output(self, name: str, inputs: list[Value]) -> Value:
        label_input(name, "embedding", inputs[0])
        return Value((self.dim,))

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        return {"weight": (inputs[0].classes, self.dim)}

    def initial_value(
        self, info: LayerInfo, key: str, shape: Shape, scheme: str, rng: np.random.Generator
    ) -> np.ndarray:
        return rng.standard_normal(shape)

    def flops(self, info: LayerInfo) -> int:
        return 0  # a lookup

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"num_embeddings": info.classes, "embedding_dim": self.dim}

    @classmethod
    def from_torch_module(cls, module: Any) -> dict[str, Any]:
        if module.padding_idx is not None or module.max_norm is not None:
            raise Unsupported(
                "has padding_idx or max_norm; gx's embedding is a plain lookup table: drop them"
            )
        if module.scale_grad_by_freq:
            raise Unsupported(
                "has scale_grad_by_freq=True; gx's embedding does not scale gradients"
            )
        return {"dim": module.embedding_dim}


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
    imported_by = "not recognised in traced code (an embedding, a product and a sum there)"
    parity_cases = {
        "projection": ParityCase({"h": [6], **LABELS}, reads=["h", "label"]),
    }

    def output(self, name: str, inputs: list[Value]) -> Value:
        features, label = inputs
        if features.is_label or len(features.shape) != 1:
            raise SpecError(
                name,
                f"projection's first input must be features (C,), got {features.describe()}",
                "flatten the features first; write input: [features, label]",
            )
        label_input(name, "projection's second input", label)
        return Value((1,))

    def parameters(self, inputs: list[Value]) -> dict[str, Shape]:
        features, label = inputs
        return {"weight": (label.classes, features.shape[0])}

    def flops(self, info: LayerInfo) -> int:
        return 0  # a lookup and a per-sample dot product, elementwise work as PyTorch counts

    def native_arguments(self, info: LayerInfo, masks: MaskSource) -> dict[str, Any]:
        return {"classes": info.classes, "features": info.in_shape[0]}
