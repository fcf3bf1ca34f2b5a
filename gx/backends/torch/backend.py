"""PyTorch side of the backend interface."""

from __future__ import annotations

import atexit
import contextlib
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gx.backends.base import OPTIMIZER_SLOTS, Backend, OptimizerSettings, run_graph
from gx.backends.torch.layers import make_layer
from gx.backends.torch.precision import LOW_DTYPES, LowPrecisionLayer
from gx.distributed import World
from gx.errors import GxError
from gx.layers.activations import LeakyReLU
from gx.precision import FLOAT32, bf16_cpu_flags, in_low_precision
from gx.spec import MaskSource, ModelSpec

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _leave_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class _FlooredLog(torch.autograd.Function):
    """max(log(value), -100) with backward grad / value where log(value) >= -100, else 0.

    The same numbers as differentiating torch.where / log / clamp (what Jittor's backend does),
    computed in two kernels each way instead of five: the loss is 2-3% of an MLP GAN's step.
    """

    @staticmethod
    def forward(ctx: Any, value: torch.Tensor) -> torch.Tensor:
        log = torch.log(value)
        ctx.save_for_backward(value, log >= -100.0)  # clamp's rule; log(0) = -inf fails it
        return log.clamp_(min=-100.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        value, kept = ctx.saved_tensors
        return torch.where(
            kept, grad / value, torch.zeros((), dtype=grad.dtype, device=grad.device)
        )


# Layers that return a fresh tensor and whose backward reads only their inputs, never their
# output: an activation that is the only reader of such an output may overwrite it.
_FRESH_OUTPUT_KINDS = frozenset(
    {"linear", "conv2d", "conv_transpose2d", "batch_norm", "conditional_batch_norm"}
)


def standard_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """The strides of a C-ordered (NCHW) tensor of ``shape``, length-1 axes included."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def in_place_activations(spec: ModelSpec) -> dict[str, nn.Module]:
    """In-place ReLU / LeakyReLU for the activations that can safely overwrite their input.

    The same values as the out-of-place layers; it saves one activation-sized allocation per
    layer, as hand-written ``nn.ReLU(True)`` models do (~3% of a DCGAN step on CPU).
    """
    readers = Counter(source for node in spec.nodes for source in node.inputs)
    infos = {info.name: info for info in spec.infos}
    activations: dict[str, nn.Module] = {}
    for node in spec.nodes:
        info = infos[node.name]
        if info.kind not in ("relu", "leaky_relu") or len(node.inputs) != 1:
            continue
        source = node.inputs[0]
        if (
            source in infos
            and infos[source].kind in _FRESH_OUTPUT_KINDS
            and readers[source] == 1
            and source not in spec.outputs
        ):
            layer = info.layer
            activations[node.name] = (
                nn.LeakyReLU(layer.slope, inplace=True)
                if isinstance(layer, LeakyReLU)
                else nn.ReLU(inplace=True)
            )
    return activations


class TorchModel(nn.Module):
    """A spec compiled to torch: one submodule per layer, named as in the spec."""

    def __init__(
        self,
        spec: ModelSpec,
        layers: dict[str, nn.Module],
        low_precision: dict[str, LowPrecisionLayer] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        for name, layer in layers.items():
            self.add_module(name, layer)
        # bf16 / fp16: the layers gx.precision names are called through their rounding
        self.ordered: dict[str, Any] = {**layers, **(low_precision or {})}
        self.fast = {**self.ordered, **in_place_activations(spec)}

    def forward(self, inputs: Mapping[str, torch.Tensor], keep_all: bool = False) -> Any:
        # keep_all hands every layer's output to the caller: nothing may be overwritten then
        return run_graph(self.spec, self.ordered if keep_all else self.fast, inputs, keep_all)


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device: str, dtype: str = "float32", precision: str = FLOAT32) -> None:
        super().__init__(device, dtype, precision)
        self.torch_device = torch.device(device)
        self.torch_dtype = _DTYPES[dtype]
        self.world, self.synced_batch_norm = World(), False
        if self.native_low_precision():
            # gx's rule sums in float32: no reduced-precision reductions inside cuBLAS
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False

    def native_low_precision(self) -> bool:
        # fp16 runs on CUDA only (gx.precision.check_device); a float64 reference emulates
        if self.precision == FLOAT32 or self.dtype != "float32":
            return False
        return self.device == "cuda" or (self.precision == "bf16" and bool(bf16_cpu_flags()))

    def build(
        self, spec: ModelSpec, masks: MaskSource | None = None, second_order: bool = False
    ) -> TorchModel:
        # second_order needs nothing here: PyTorch differentiates the backward of every layer
        masks = masks or MaskSource(0)
        layers = {
            info.name: make_layer(info, masks, self.torch_dtype, self.synced_batch_norm)
            for info in spec.infos
        }
        low_precision = {}
        if self.precision != FLOAT32:
            native = self.native_low_precision()
            low_precision = {
                info.name: LowPrecisionLayer(
                    layers[info.name], LOW_DTYPES[self.precision], native, self.torch_dtype
                )
                for info in spec.infos
                if in_low_precision(info)
            }
        return TorchModel(spec, layers, low_precision).to(self.torch_device, self.torch_dtype)

    def assign(self, target: torch.Tensor, array: np.ndarray) -> None:
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    def set_training(self, module: nn.Module, training: bool) -> None:
        module.train(training)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        array = np.asarray(array)
        dtype = torch.long if np.issubdtype(array.dtype, np.integer) else self.torch_dtype
        tensor = torch.as_tensor(array, dtype=dtype, device=self.torch_device)
        # numpy gives a length-1 axis any stride: a batch picked from (N, 1, H, W) images by
        # index arrives as (H*W, 1, W, 1), which PyTorch reads as channels-last. Its convolutions
        # then return channels-last outputs, and PyTorch's channels-last CPU batch norm is far
        # less exact than its NCHW kernel (MNIST conv features: 3.7e-4 against 7.9e-7 from
        # float64). gx computes in the NCHW layout only.
        if tensor.stride() != standard_strides(tensor.shape):
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        return tensor

    def numpy(self, value: torch.Tensor) -> np.ndarray:
        return value.detach().cpu().numpy()

    def scalar(self, value: torch.Tensor) -> float:
        return value.item()

    def take(self, data: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        return data[torch.from_numpy(indices).to(self.torch_device, non_blocking=True)]

    def detach(self, value: torch.Tensor) -> torch.Tensor:
        return value.detach()

    def no_grad(self) -> contextlib.AbstractContextManager:
        return torch.no_grad()

    def gradients(self, loss: torch.Tensor, values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, list(values), retain_graph=True, allow_unused=True))

    def watch(self, value: torch.Tensor) -> torch.Tensor:
        return value.detach().requires_grad_(True)

    def input_gradients(
        self, output: torch.Tensor, inputs: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        return list(torch.autograd.grad(output.sum(), list(inputs), create_graph=True))

    def relu(self, value: torch.Tensor) -> torch.Tensor:
        return torch.relu(value)

    def absolute(self, value: torch.Tensor) -> torch.Tensor:
        return value.abs()

    def log_sigmoid(self, value: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(value)

    def norms(self, value: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(value.flatten(1), dim=1)

    def logsumexp(self, values: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.logsumexp(torch.cat([value.reshape(-1) for value in values]), 0)

    def gram(self, rows: torch.Tensor) -> torch.Tensor:
        return rows @ rows.T

    def floored_log(self, value: torch.Tensor) -> torch.Tensor:
        return _FlooredLog.apply(value)

    def cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, labels)

    def optimizer(
        self, parameters: Mapping[str, torch.Tensor], settings: OptimizerSettings
    ) -> torch.optim.Optimizer:
        optimizer: Any  # gx tags it with its kind and named parameters below
        values, kind, lr = list(parameters.values()), settings.kind, settings.lr
        beta1, beta2 = settings.betas
        if kind == "adam":
            optimizer = torch.optim.Adam(values, lr=lr, betas=(beta1, beta2), eps=settings.eps)
        elif kind == "adamw":
            optimizer = torch.optim.AdamW(
                values,
                lr=lr,
                betas=(beta1, beta2),
                eps=settings.eps,
                weight_decay=settings.weight_decay,
            )
        elif kind == "rmsprop":
            optimizer = torch.optim.RMSprop(values, lr=lr, alpha=settings.alpha, eps=settings.eps)
        else:
            optimizer = torch.optim.SGD(values, lr=lr, momentum=settings.momentum)
        optimizer.gx_kind, optimizer.gx_parameters = kind, dict(parameters)
        return optimizer

    def set_learning_rate(self, optimizer: Any, lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr

    def minimize(self, optimizer: Any, loss: torch.Tensor, loss_scale: float | None = None) -> bool:
        # Gradients of this optimizer's parameters only: loss.backward() would also compute
        # D's weight gradients in G's update, which nothing uses (5% of a cdcgan step's FLOPs).
        parameters = list(optimizer.gx_parameters.values())
        if loss_scale is not None:
            loss = loss * loss_scale
        gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
        for parameter, gradient in zip(parameters, gradients):
            parameter.grad = gradient
        if self.world.size > 1:
            self._average_gradients(optimizer)
        if loss_scale is not None and not self._unscale(optimizer, loss_scale):
            return False
        optimizer.step()
        return True

    def _unscale(self, optimizer: Any, loss_scale: float) -> bool:
        """Divide the gradients by ``loss_scale``, unless one is not finite (then False). After
        the all-reduce: every process sees the same overflow and skips the same update."""
        gradients = [p.grad for p in optimizer.gx_parameters.values() if p.grad is not None]
        if not bool(torch.stack([torch.isfinite(g).all() for g in gradients]).all()):
            return False
        for gradient in gradients:
            gradient.div_(loss_scale)  # a power of two: exact
        return True

    def clip(self, parameters: Sequence[torch.Tensor], limit: float) -> None:
        with torch.no_grad():
            for parameter in parameters:
                parameter.clamp_(-limit, limit)

    def _average_gradients(self, optimizer: Any) -> None:
        """Mean of every process's gradients, in one all-reduce over one flat buffer (the
        all-reduce DistributedDataParallel is built on; DDP itself expects one forward per
        backward, and a GAN step runs D twice)."""
        gradients = [
            p.grad if p.grad is not None else torch.zeros_like(p)
            for p in optimizer.gx_parameters.values()
        ]
        flat = torch.cat([gradient.reshape(-1) for gradient in gradients])
        torch.distributed.all_reduce(flat)
        flat /= self.world.size
        offset = 0
        for parameter, gradient in zip(optimizer.gx_parameters.values(), gradients):
            parameter.grad = flat[offset : offset + gradient.numel()].view_as(gradient)
            offset += gradient.numel()

    def join(self, world: World, sync_batch_norm: bool) -> None:
        if self.torch_device.type == "cuda":
            if torch.cuda.device_count() <= world.local_rank:
                raise GxError(
                    f"process {world.rank} needs GPU {world.local_rank}, but this "
                    f"machine has {torch.cuda.device_count()}; start at most that "
                    "many processes per machine, or use --device cpu"
                )
            torch.cuda.set_device(world.local_rank)
            self.torch_device = torch.device("cuda", world.local_rank)
        if not torch.distributed.is_initialized():
            # torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) says where
            # the others are; NCCL between GPUs, gloo (TCP) between CPUs.
            torch.distributed.init_process_group(
                "nccl" if self.torch_device.type == "cuda" else "gloo",
                init_method="env://",
                rank=world.rank,
                world_size=world.size,
            )
            # Left to the interpreter's exit, gloo's worker threads can still hold tensors while
            # Python tears down, and the process aborts ("terminate called without an active
            # exception") after a run that went well. atexit runs while Python is whole, on
            # every way out: a finished run, an error, Ctrl-C.
            atexit.register(_leave_process_group)
        # Synced batch norm needs an all-reduce that autograd differentiates: in torch 2.13 that
        # is still torch.distributed.nn.functional's, whose suggested successor (the private
        # _functional_collectives.all_reduce) has no backward. Its deprecation notice would print
        # on every step.
        warnings.filterwarnings(
            "ignore",
            category=FutureWarning,
            message=r"torch\.distributed\.nn\.functional\.all_reduce",
        )
        self.world, self.synced_batch_norm = world, sync_batch_norm

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        if self.world.size == 1:
            return super().all_reduce_sum(values)
        total = torch.as_tensor(np.asarray(values, np.float64), device=self.torch_device)
        torch.distributed.all_reduce(total)
        return total.cpu().numpy()

    def get_optimizer_state(self, optimizer: Any) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        step = 0.0
        for name, parameter in optimizer.gx_parameters.items():
            slots = optimizer.state.get(parameter, {})
            for slot in OPTIMIZER_SLOTS[optimizer.gx_kind]:
                if slots.get(slot) is not None:
                    arrays[f"{name}.{slot}"] = self.numpy(slots[slot])
            step = float(slots.get("step", step))
        arrays["step"] = np.array(step)
        return arrays

    def load_optimizer_state(self, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
        for name, parameter in optimizer.gx_parameters.items():
            slots: dict[str, Any] = {
                slot: self.tensor(state[f"{name}.{slot}"]).clone()
                for slot in OPTIMIZER_SLOTS[optimizer.gx_kind]
                if f"{name}.{slot}" in state
            }
            if optimizer.gx_kind != "sgd" and slots:  # the others count their steps
                slots["step"] = torch.tensor(float(state["step"]), dtype=torch.float32)
            if slots:
                optimizer.state[parameter] = slots

    def strict_math(self) -> None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False

    def set_cpu_threads(self, count: int) -> None:
        torch.set_num_threads(count)

    def synchronize(self) -> None:
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize()

    def describe(self) -> dict[str, Any]:
        info = {
            "backend": "torch",
            "version": torch.__version__,
            "device": self.device,
            "dtype": self.dtype,
            "threads": torch.get_num_threads(),
            "processes": self.world.size,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **self.precision_info(),
        }
        if self.device == "cuda":
            info["gpu"] = torch.cuda.get_device_name()
            info["tf32"] = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
            info["cudnn_deterministic"] = torch.backends.cudnn.deterministic
        return info
