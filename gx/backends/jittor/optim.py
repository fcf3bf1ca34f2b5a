"""Jittor optimizers with gx's (PyTorch's) update rules.

Jittor's own Adam folds the bias correction of the second moment into the step size, which
makes its epsilon effectively eps / sqrt(1 - beta2^t); with small gradients updates differ from
PyTorch's by up to ~90%. gx's Adam is PyTorch's, written in the same order of operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jittor as jt


class TorchRuleAdam(jt.optim.Optimizer):
    def __init__(self, params: list[jt.Var], lr: float, betas: Sequence[float], eps: float) -> None:
        super().__init__(params, lr)
        self.betas, self.eps = tuple(betas), eps
        self.steps_taken = 0
        for group in self.param_groups:
            group["exp_avg"] = [jt.zeros(p.shape, p.dtype).stop_grad() for p in group["params"]]
            group["exp_avg_sq"] = [jt.zeros(p.shape, p.dtype).stop_grad() for p in group["params"]]

    def step(self, loss: jt.Var | None = None, retain_graph: bool = False) -> None:
        self.pre_step(loss, retain_graph)
        self.steps_taken += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps_taken)
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps_taken)
        weight = 1 - beta1
        for group in self.param_groups:
            for p, g, m, v in zip(
                group["params"], group["grads"], group["exp_avg"], group["exp_avg_sq"]
            ):
                if p.is_stop_grad():
                    continue
                # torch.lerp's two branches, so the rounding matches for every beta1
                if weight < 0.5:
                    m.update(m + weight * (g - m))
                else:
                    m.update(g - (g - m) * (1 - weight))
                v.update(v * beta2 + (1 - beta2) * g * g)
                denominator = jt.sqrt(v) / bias_correction2_sqrt + self.eps
                p.update(p + (-step_size) * m / denominator)
        self.post_step()


class TorchRuleSGD(jt.optim.Optimizer):
    """SGD with optional momentum and no dampening: buf = momentum * buf + g; p -= lr * buf.

    The buffer starts at zero, so the first step's buffer is exactly g, as PyTorch's (a clone of
    g). Nothing depends on the step count: PyTorch's SGD keeps none, so a checkpoint it wrote
    records step 0, and continuing one here must still carry its momentum on.
    """

    def __init__(self, params: list[jt.Var], lr: float, momentum: float) -> None:
        super().__init__(params, lr)
        self.momentum = momentum
        self.steps_taken = 0
        for group in self.param_groups:
            group["momentum_buffer"] = [
                jt.zeros(p.shape, p.dtype).stop_grad() for p in group["params"]
            ]

    def step(self, loss: jt.Var | None = None, retain_graph: bool = False) -> None:
        self.pre_step(loss, retain_graph)
        self.steps_taken += 1
        for group in self.param_groups:
            for p, g, buffer in zip(group["params"], group["grads"], group["momentum_buffer"]):
                if p.is_stop_grad():
                    continue
                if self.momentum:
                    buffer.update(buffer * self.momentum + g)
                    g = buffer
                p.update(p - self.lr * g)
        self.post_step()
