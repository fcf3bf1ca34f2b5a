"""The interface every backend implements, and the pieces of compiled models they share.

A backend turns a ``ModelSpec`` into a native module and moves numbers between numpy and the
framework. It holds only what differs between frameworks; the walk over the graph, the dropout
masks, initial weights and the training loop live here and in the core, written once.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Callable, Protocol

import numpy as np

from gx.distributed import World
from gx.errors import GxError
from gx.layers import Layer
from gx.precision import FLOAT32
from gx.spec import LayerInfo, MaskSource, ModelSpec, initial_state

Tensor = Any  # a torch.Tensor or a jittor.Var
Module = Any  # a torch.nn.Module or a jittor.Module


class OptimizerSettings(Protocol):
    """What ``Backend.optimizer`` reads of one network's optimizer settings (gx.config's
    ``OptimizerSettings`` has all of it; the backends sit below the experiment's schema)."""

    @property
    def kind(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def betas(self) -> tuple[float, float]: ...
    @property
    def eps(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...


class LayerClasses(dict[str, Callable[..., Any]]):
    """A backend's own layer classes (or factories) by kind, for the kinds whose definition
    names no framework class for this backend; filled by decorating them::

        LAYER_CLASSES = LayerClasses("torch")

        @LAYER_CLASSES.register("one_hot", "label_map")
        class OneHot(nn.Module): ...
    """

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def register(self, *kinds: str) -> Callable[[Any], Any]:
        def add(built: Any) -> Any:
            for kind in kinds:
                self[kind] = built
            return built

        return add

    def for_kind(self, layer: Layer) -> Callable[..., Any]:
        """This backend's class for ``layer``'s kind: its own, else the framework's own class
        the kind's definition names (``Layer.framework_classes``)."""
        if layer.kind in self:
            return self[layer.kind]
        path = layer.framework_classes.get(self.backend)
        if path is None:
            raise NotImplementedError(
                f"the {self.backend} backend has no layer kind '{layer.kind}'"
            )
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def build(self, info: LayerInfo, masks: MaskSource, **extra: Any) -> Any:
        """The native layer computing ``info``, from its kind's ``native_arguments`` and the
        backend's ``extra`` keywords (a dtype, a process count)."""
        return self.for_kind(info.layer)(**info.layer.native_arguments(info, masks), **extra)


def run_graph(
    spec: ModelSpec,
    layers: Mapping[str, Callable[..., Tensor]],
    inputs: Mapping[str, Tensor],
    keep_all: bool = False,
) -> Any:
    """Evaluate the spec's nodes in order; the forward pass of every compiled model.

    Returns the output tensor (a tuple of them for a spec of several outputs), or with
    ``keep_all`` a dict of every input and layer output (what the parity report compares layer
    by layer).
    """
    missing = set(spec.inputs) - set(inputs)
    if missing:
        raise GxError(
            f"model input(s) {', '.join(sorted(missing))} not given; "
            f"the model takes {', '.join(spec.inputs)}"
        )
    # Unless every value is asked for, drop each one after its last reader, as a hand-written
    # forward does: an eager framework then reuses its memory at once (holding every activation
    # to the end cost torch ~5% of a DCGAN training step on CPU, in fresh allocations).
    last_reader = {} if keep_all else spec.last_readers
    values = dict(inputs)
    for node in spec.nodes:
        values[node.name] = layers[node.name](*[values[source] for source in node.inputs])
        for source in node.inputs:
            if last_reader.get(source) == node.name:
                values.pop(source, None)  # pop: a node may read the same value twice
    if keep_all:
        return values
    if len(spec.outputs) == 1:
        return values[spec.output]
    return tuple(values[name] for name in spec.outputs)


# Each optimizer's state per parameter, named as PyTorch names it; all but SGD also count steps.
OPTIMIZER_SLOTS = {
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg",),
    "sgd": ("momentum_buffer",),
}


class Backend(abc.ABC):
    """One framework on one device. Subclasses live in gx/backends/<name>/."""

    name: str = ""

    def __init__(self, device: str, dtype: str = "float32", precision: str = FLOAT32) -> None:
        self.device = device  # "cpu" or "cuda", already resolved
        self.dtype = dtype
        # gx.precision: which layers compute from operands rounded to bf16 or fp16
        self.precision = precision

    # -- compiling and state ------------------------------------------------------------------
    @abc.abstractmethod
    def build(
        self, spec: ModelSpec, masks: MaskSource | None = None, second_order: bool = False
    ) -> Module:
        """A native module computing ``spec`` in the backend's precision; call it as
        ``module(inputs_dict)``.

        ``second_order``: its input gradients (``input_gradients``) can be differentiated
        again, as gradient penalties need; where that costs a framework extra work in every
        backward pass, only modules built with it pay.
        """

    def native_low_precision(self) -> bool:
        """Whether the low-precision layers run the framework's own bf16/fp16 kernels here
        (else emulated: float32 kernels on rounded values, see gx.precision)."""
        return False

    def precision_info(self) -> dict[str, Any]:
        """The precision entries of ``describe()``: none in float32, so float32 runs describe
        themselves (and their checkpoints) exactly as before the setting existed."""
        if self.precision == FLOAT32:
            return {}
        kernels = "native" if self.native_low_precision() else "emulated"
        return {"precision": self.precision, "low_precision_kernels": kernels}

    def compile(
        self,
        spec: ModelSpec,
        seed: int | Sequence[int],
        masks: MaskSource | None = None,
        rounding: str = "nearest",
        second_order: bool = False,
    ) -> Module:
        """A native module for ``spec`` holding gx's seeded initial weights, in training mode
        (``rounding``: how their float64 draws become float32, see gx.spec.init)."""
        module = self.build(spec, masks, second_order)
        self.load_weights(
            module, spec, initial_state(spec, seed, rounding=rounding), "the initial weights"
        )
        self.set_training(module, True)
        return module

    def state_tensors(
        self, module: Module, spec: ModelSpec, trainable_only: bool = False
    ) -> dict[str, Tensor]:
        """The module's parameters (and buffers) keyed 'layer.param', in spec order.

        Both backends name their attributes after the spec, so plain attribute access finds them.
        """
        tensors = {}
        for info in spec.infos:
            names = list(info.parameters) + ([] if trainable_only else list(info.buffers))
            for attribute in names:
                tensors[f"{info.name}.{attribute}"] = getattr(getattr(module, info.name), attribute)
        return tensors

    def load_weights(
        self,
        module: Module,
        spec: ModelSpec,
        state: Mapping[str, np.ndarray],
        source: str = "the weights",
    ) -> None:
        """Overwrite every parameter and buffer with ``state`` (keyed 'layer.param'), refusing
        weights of another model with one message naming ``source``."""
        spec.check_state(state, source)
        dtype = np.float64 if self.dtype == "float64" else np.float32
        for key, tensor in self.state_tensors(module, spec).items():
            self.assign(tensor, np.asarray(state[key], dtype=dtype))

    def get_weights(self, module: Module, spec: ModelSpec) -> dict[str, np.ndarray]:
        """Every parameter and buffer as a float32 numpy copy, keyed 'layer.param'."""
        return {
            key: self.numpy(tensor).astype(np.float32)
            for key, tensor in self.state_tensors(module, spec).items()
        }

    @abc.abstractmethod
    def assign(self, target: Tensor, array: np.ndarray) -> None:
        """Overwrite a parameter or buffer in place with ``array`` (no gradient recorded)."""

    @abc.abstractmethod
    def set_training(self, module: Module, training: bool) -> None:
        """Training mode: batch statistics and active dropout. Gradients flow in both modes."""

    # -- tensors --------------------------------------------------------------------------------
    @abc.abstractmethod
    def tensor(self, array: np.ndarray) -> Tensor:
        """A float array in the backend's dtype, or integer labels, on the backend's device."""

    @abc.abstractmethod
    def numpy(self, value: Tensor) -> np.ndarray: ...

    def scalar(self, value: Tensor) -> float:
        return float(self.numpy(value).reshape(-1)[0])

    @abc.abstractmethod
    def take(self, data: Tensor, indices: np.ndarray) -> Tensor:
        """Rows ``indices`` of ``data`` (a batch from a dataset held on the device)."""

    @abc.abstractmethod
    def detach(self, value: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def no_grad(self) -> AbstractContextManager: ...

    @abc.abstractmethod
    def gradients(self, loss: Tensor, values: Sequence[Tensor]) -> list[Tensor]:
        """d loss / d value for each value (used by the parity report)."""

    @abc.abstractmethod
    def watch(self, value: Tensor) -> Tensor:
        """``value`` as a new leaf that ``input_gradients`` can differentiate with respect to
        (PyTorch must be told before the forward pass; Jittor can differentiate any value)."""

    @abc.abstractmethod
    def input_gradients(self, output: Tensor, inputs: Sequence[Tensor]) -> list[Tensor]:
        """d sum(output) / d input for each of ``inputs`` (watched), as values that can be
        differentiated again (a gradient penalty's update differentiates them for D's weights).
        Each sample's score depends on its own input only (batch norm aside), so row i of the
        gradient is the gradient of score i."""

    # -- training: the primitives gx.losses are written in ----------------------------------------
    @abc.abstractmethod
    def relu(self, value: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def absolute(self, value: Tensor) -> Tensor:
        """|x|, with PyTorch's gradient sign(x): 0 at 0 (Jittor's native one is 1 there)."""

    @abc.abstractmethod
    def log_sigmoid(self, value: Tensor) -> Tensor:
        """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), PyTorch's formula: finite for every
        x, where log of a sigmoid that rounded to 0 would be -inf. Its gradient is
        sigmoid(-x) everywhere, 1/2 at 0."""

    @abc.abstractmethod
    def norms(self, value: Tensor) -> Tensor:
        """The Euclidean norm of each sample (over every axis but the first), shape (N,), with
        gradient 0 where a norm is 0 (PyTorch's rule; sqrt's own gradient there is infinite)."""

    @abc.abstractmethod
    def logsumexp(self, values: Sequence[Tensor]) -> Tensor:
        """log(sum(exp(v))) over every element of every tensor, with the maximum subtracted
        first (exp of a large score would overflow)."""

    @abc.abstractmethod
    def gram(self, rows: Tensor) -> Tensor:
        """rows @ rows^T for (N, D) rows: every pair's dot product, (N, N)."""

    @abc.abstractmethod
    def floored_log(self, value: Tensor) -> Tensor:
        """log(value) floored at -100 (PyTorch's BCELoss rule), with a finite gradient at 0.

        Flooring log(0) = -inf zeroes the incoming gradient, but log's backward still divides it
        by the 0, and 0/0 = NaN spreads to every weight. A sigmoid saturating to exactly 0 or 1 in
        float32 is common in GAN training, so the log is taken of 1 there instead.
        """

    @abc.abstractmethod
    def cross_entropy(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean softmax cross-entropy of (N, classes) logits against integer labels (N,)."""

    @abc.abstractmethod
    def optimizer(self, parameters: Mapping[str, Tensor], settings: OptimizerSettings) -> Any:
        """The optimizer ``settings.kind`` names over named parameters, with PyTorch's update
        rule: Adam, AdamW (decoupled weight decay), RMSprop (neither centered nor with
        momentum), or SGD without dampening."""

    @abc.abstractmethod
    def set_learning_rate(self, optimizer: Any, lr: float) -> None: ...

    @abc.abstractmethod
    def minimize(self, optimizer: Any, loss: Tensor, loss_scale: float | None = None) -> bool:
        """Gradients of ``loss`` for this optimizer's parameters only, then one update.

        With a ``loss_scale`` (fp16, gx.train.loss_scale) the gradients are those of
        ``loss * loss_scale``, divided by it; if any is not finite the update is skipped.
        Returns whether the update was taken.
        """

    @abc.abstractmethod
    def clip(self, parameters: Sequence[Tensor], limit: float) -> None:
        """Clamp each parameter, in place, into [-limit, limit] (WGAN's weight clipping)."""

    @abc.abstractmethod
    def get_optimizer_state(self, optimizer: Any) -> dict[str, np.ndarray]:
        """Slots keyed 'layer.param.slot' (OPTIMIZER_SLOTS), and 'step'."""

    @abc.abstractmethod
    def load_optimizer_state(self, optimizer: Any, state: Mapping[str, np.ndarray]) -> None: ...

    @abc.abstractmethod
    def strict_math(self) -> None:
        """For comparisons: no TF32 or other reduced-precision math, deterministic kernels."""

    def set_cpu_threads(self, count: int) -> None:
        """Threads of the CPU kernels from now on (process-wide). gx parity trains a second
        float32 reference with another count: a different summation order, equally valid."""
        raise GxError(f"the {self.name} backend cannot set its CPU thread count")

    # -- several processes ---------------------------------------------------------------------
    def join(self, world: World, sync_batch_norm: bool) -> None:
        """Train as one of ``world.size`` processes: connect to the others, average gradients in
        ``minimize``, and (with ``sync_batch_norm``) build batch norm over the global batch.
        Call before building models."""
        raise GxError(f"the {self.name} backend cannot train in several processes")

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        """The float64 sum of ``values`` over every process (one process: the values)."""
        return np.asarray(values, np.float64)

    # -- timing and reporting -------------------------------------------------------------------
    @abc.abstractmethod
    def synchronize(self) -> None:
        """Wait for queued work (timing); a no-op where execution is eager on the host."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Framework version, device and notable settings, for run folders and reports."""
