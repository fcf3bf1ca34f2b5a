"""Jittor side of the backend interface. Import only after environment.prepare()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jittor as jt
import numpy as np

from gx.backends.base import OPTIMIZER_SLOTS, Backend, OptimizerSettings, run_graph
from gx.backends.jittor import environment
from gx.backends.jittor.layers import make_layer
from gx.backends.jittor.optim import (
    TorchRuleAdam,
    TorchRuleAdamW,
    TorchRuleRMSprop,
    TorchRuleSGD,
)
from gx.backends.jittor.precision import LowPrecisionLayer
from gx.distributed import World
from gx.errors import GxError
from gx.precision import FLOAT32, in_low_precision
from gx.spec import MaskSource, ModelSpec


class JittorModel(jt.Module):
    """A spec compiled to Jittor: one submodule per layer, named as in the spec."""

    def __init__(
        self,
        spec: ModelSpec,
        layers: dict[str, jt.Module],
        low_precision: dict[str, LowPrecisionLayer] | None = None,
    ) -> None:
        self.spec = spec
        for name, layer in layers.items():
            setattr(self, name, layer)
        # bf16 / fp16: the layers gx.precision names are called through their rounding
        self.ordered: dict[str, Any] = {**layers, **(low_precision or {})}

    def execute(self, inputs: Mapping[str, jt.Var], keep_all: bool = False) -> Any:
        return run_graph(self.spec, self.ordered, inputs, keep_all)


class JittorBackend(Backend):
    name = "jittor"

    def __init__(self, device: str, dtype: str = "float32", precision: str = FLOAT32) -> None:
        super().__init__(device, dtype, precision)
        jt.flags.use_cuda = 1 if device == "cuda" else 0
        # IEEE kernels: -Ofast ones would switch this whole process to flush-to-zero
        jt.flags.cc_flags = environment.ieee_kernel_flags(jt.flags.cc_flags)
        self.world, self.batch_norm_processes = World(), 1

    def build(
        self, spec: ModelSpec, masks: MaskSource | None = None, second_order: bool = False
    ) -> JittorModel:
        masks = masks or MaskSource(0)
        layers = {
            info.name: make_layer(info, masks, self.batch_norm_processes, second_order)
            for info in spec.infos
        }
        low_precision = {}
        if self.precision != FLOAT32:
            low_precision = {
                info.name: LowPrecisionLayer(layers[info.name], self.precision)
                for info in spec.infos
                if in_low_precision(info)
            }
        return JittorModel(spec, layers, low_precision)

    def join(self, world: World, sync_batch_norm: bool) -> None:
        # Jittor joins at import: under mpirun it reads OpenMPI's variables and connects. Its
        # optimizers (gx's included, through Optimizer.backward) then average gradients over
        # every process with one MPI all-reduce per step, so minimize needs nothing more.
        if not jt.in_mpi or jt.world_size != world.size:
            raise GxError(
                f"this process was started by {world.launcher or 'a launcher'} as one "
                f"of {world.size}, but Jittor runs as one of {jt.world_size}; Jittor "
                "trains in several processes only under OpenMPI's mpirun "
                "(gx run --backend jittor --nproc N starts it)"
            )
        self.world = world
        self.batch_norm_processes = world.size if sync_batch_norm else 1

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        if self.world.size == 1:
            return super().all_reduce_sum(values)
        return jt.array(np.asarray(values, np.float64)).mpi_all_reduce("add").numpy()

    def assign(self, target: jt.Var, array: np.ndarray) -> None:
        target.assign(jt.array(np.asarray(array, np.float32)))
        target.sync()

    def set_training(self, module: jt.Module, training: bool) -> None:
        # Module.eval() would also stop every parameter's gradient; gx's eval mode only
        # switches batch statistics and dropout, as in PyTorch.
        for submodule in module.modules():
            submodule.is_train = training

    def tensor(self, array: np.ndarray) -> jt.Var:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.integer):
            return jt.array(array.astype(np.int32))
        return jt.array(array.astype(np.float32, copy=False))

    def numpy(self, value: jt.Var) -> np.ndarray:
        return value.numpy()

    def scalar(self, value: jt.Var) -> float:
        return value.item()

    def take(self, data: jt.Var, indices: np.ndarray) -> jt.Var:
        return data[jt.array(indices.astype(np.int32))]

    def detach(self, value: jt.Var) -> jt.Var:
        return value.detach()

    def no_grad(self) -> jt.no_grad:
        return jt.no_grad()

    def gradients(self, loss: jt.Var, values: Sequence[jt.Var]) -> list[jt.Var]:
        return list(jt.grad(loss, list(values), retain_graph=True))

    def watch(self, value: jt.Var) -> jt.Var:
        return value.detach()

    def input_gradients(self, output: jt.Var, inputs: Sequence[jt.Var]) -> list[jt.Var]:
        # Jittor's gradients are ordinary values of the graph: differentiable again as they are
        return list(jt.grad(output.sum(), list(inputs), retain_graph=True))

    def relu(self, value: jt.Var) -> jt.Var:
        return jt.nn.relu(value)

    def absolute(self, value: jt.Var) -> jt.Var:
        return value * self._sign(value)

    def log_sigmoid(self, value: jt.Var) -> jt.Var:
        # PyTorch's formula and gradient, written with the branch masks as constants: Jittor's
        # own |x| would give x = 0 a gradient of 1, PyTorch's 0 (so 1/2 at 0 here as there).
        # log(1 + z) for log1p(z), which Jittor lacks: within 2^-23 absolute for z in (0, 1].
        negative = (value < 0).cast(value.dtype)
        magnitude = value * (1.0 - 2.0 * negative)
        return value * negative - jt.log(1.0 + jt.exp(-magnitude))

    @staticmethod
    def _sign(value: jt.Var) -> jt.Var:
        """sign(x) as a constant of the graph: 1, 0 or -1."""
        return (value > 0).cast(value.dtype) - (value < 0).cast(value.dtype)

    def norms(self, value: jt.Var) -> jt.Var:
        squares = (value * value).reshape(value.shape[0], -1).sum(1)
        positive = squares > 0
        # the square root of 1 where the norm is 0: its gradient there is then 0, not 0 * inf
        root = jt.sqrt(jt.ternary(positive, squares, jt.ones_like(squares)))
        return jt.ternary(positive, root, jt.zeros_like(squares))

    def logsumexp(self, values: Sequence[jt.Var]) -> jt.Var:
        flat = jt.concat([value.reshape(-1) for value in values])
        largest = flat.max().detach()
        return largest + jt.log(jt.exp(flat - largest).sum())

    def gram(self, rows: jt.Var) -> jt.Var:
        return jt.matmul(rows, rows.transpose())

    def floored_log(self, value: jt.Var) -> jt.Var:
        positive = value > 0
        safe_log = jt.maximum(jt.log(jt.ternary(positive, value, jt.ones_like(value))), -100.0)
        return jt.ternary(positive, safe_log, jt.full_like(value, -100.0))

    def cross_entropy(self, logits: jt.Var, labels: jt.Var) -> jt.Var:
        # log-softmax with the row maximum subtracted, as PyTorch computes it
        shifted = logits - logits.max(dim=1, keepdims=True)
        log_probabilities = shifted - jt.log(jt.exp(shifted).sum(dim=1, keepdims=True))
        picked = (log_probabilities * jt.nn.one_hot(labels, logits.shape[1])).sum(dim=1)
        return -picked.mean()

    def optimizer(
        self, parameters: Mapping[str, jt.Var], settings: OptimizerSettings
    ) -> jt.optim.Optimizer:
        values, kind, lr = list(parameters.values()), settings.kind, settings.lr
        optimizer: jt.optim.Optimizer
        if kind == "adam":
            optimizer = TorchRuleAdam(values, lr, settings.betas, settings.eps)
        elif kind == "adamw":
            optimizer = TorchRuleAdamW(
                values, lr, settings.betas, settings.eps, settings.weight_decay
            )
        elif kind == "rmsprop":
            optimizer = TorchRuleRMSprop(values, lr, settings.alpha, settings.eps)
        else:
            optimizer = TorchRuleSGD(values, lr, settings.momentum)
        optimizer.gx_kind, optimizer.gx_names = kind, list(parameters)
        return optimizer

    def set_learning_rate(self, optimizer: jt.optim.Optimizer, lr: float) -> None:
        optimizer.lr = lr

    def minimize(
        self, optimizer: jt.optim.Optimizer, loss: jt.Var, loss_scale: float | None = None
    ) -> bool:
        if loss_scale is None:
            optimizer.step(loss)
        else:
            # the optimizer's own backward (MPI-averaged), then its step on those gradients
            optimizer.backward(loss * loss_scale)
            gradients = [
                gradient
                for group in optimizer.param_groups
                for parameter, gradient in zip(group["params"], group["grads"])
                if not parameter.is_stop_grad()
            ]
            overflow = sum(jt.logical_not(gradient.isfinite()).sum() for gradient in gradients)
            if overflow.item() > 0:
                optimizer.zero_grad()
                return False
            for gradient in gradients:
                gradient.update(gradient / loss_scale)  # a power of two: exact
            optimizer.step()
        # Run the update now. Left lazy, it gets fused with whatever reads the state next (the
        # next step, a sample grid, a checkpoint), and the rounding of that fused kernel differs:
        # the numbers would depend on sample_every and checkpoint_every, and resuming would not
        # continue a run exactly.
        jt.sync_all()
        return True

    def clip(self, parameters: Sequence[jt.Var], limit: float) -> None:
        for parameter in parameters:
            parameter.update(jt.clamp(parameter, -limit, limit))
        jt.sync_all()  # now, as minimize updates: not fused into whatever reads them next

    def get_optimizer_state(self, optimizer: jt.optim.Optimizer) -> dict[str, np.ndarray]:
        group = optimizer.param_groups[0]
        arrays = {
            f"{name}.{slot}": group[slot][index].numpy()
            for slot in OPTIMIZER_SLOTS[optimizer.gx_kind]
            for index, name in enumerate(optimizer.gx_names)
        }
        arrays["step"] = np.array(float(optimizer.steps_taken))
        return arrays

    def load_optimizer_state(
        self, optimizer: jt.optim.Optimizer, state: Mapping[str, np.ndarray]
    ) -> None:
        group = optimizer.param_groups[0]
        for slot in OPTIMIZER_SLOTS[optimizer.gx_kind]:
            for index, name in enumerate(optimizer.gx_names):
                if f"{name}.{slot}" in state:
                    group[slot][index].assign(
                        jt.array(np.asarray(state[f"{name}.{slot}"], np.float32))
                    )
        optimizer.steps_taken = int(state["step"])

    def strict_math(self) -> None:
        # Jittor uses tensor cores (TF32) in cuBLAS/cuDNN only when this flag is set.
        jt.flags.use_tensorcore = 0

    def synchronize(self) -> None:
        jt.sync_all(True)

    def describe(self) -> dict[str, Any]:
        info = {
            "backend": "jittor",
            "version": jt.__version__,
            "device": self.device,
            "dtype": self.dtype,
            "onednn": environment.onednn_enabled(),
            "processes": self.world.size,
            "kernel_flags": environment.optimisation_flags(jt.flags.cc_flags),
            **self.precision_info(),
        }
        if self.device == "cuda":
            info["tf32"] = bool(jt.flags.use_tensorcore)
        return info
