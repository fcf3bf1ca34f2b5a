"""Jittor optimizers with gx's (PyTorch's) update rules, written in PyTorch's order of
operations.

Jittor's own Adam folds the bias correction of the second moment into the step size, which
makes its epsilon effectively eps / sqrt(1 - beta2^t); with small gradients updates differ from
PyTorch's by up to ~90%. Its AdamW places eps as PyTorch does, but takes no weight decay unless
told (PyTorch: 0.01) and averages the first moment as b1 * m + (1 - b1) * g, not with lerp;
its RMSprop is PyTorch's formula. gx's own classes here keep one rule for all of them, the
optimizer state under PyTorch's names, and the step count a checkpoint carries
(docs/semantics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jittor as jt


class TorchRuleAdam(jt.optim.Optimizer):
    """Adam (Kingma and Ba, 2015), eps added after the bias-corrected square root."""

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
                p = self.decayed(p)
                # torch.lerp's two branches, so the rounding matches for every beta1
                if weight < 0.5:
                    m.update(m + weight * (g - m))
                else:
                    m.update(g - (g - m) * (1 - weight))
                v.update(v * beta2 + (1 - beta2) * g * g)
                denominator = jt.sqrt(v) / bias_correction2_sqrt + self.eps
                p.update(p + (-step_size) * m / denominator)
        self.post_step()

    def decayed(self, p: jt.Var) -> jt.Var:
        """The parameter the update starts from: itself (AdamW decays it first)."""
        return p


class TorchRuleAdamW(TorchRuleAdam):
    """AdamW (Loshchilov and Hutter, 2019): p *= 1 - lr * weight_decay, then Adam's update."""

    def __init__(
        self,
        params: list[jt.Var],
        lr: float,
        betas: Sequence[float],
        eps: float,
        weight_decay: float,
    ) -> None:
        super().__init__(params, lr, betas, eps)
        self.weight_decay = weight_decay

    def decayed(self, p: jt.Var) -> jt.Var:
        p.update(p * (1 - self.lr * self.weight_decay))
        return p


class TorchRuleRMSprop(jt.optim.Optimizer):
    """RMSprop (Tieleman and Hinton, 2012), neither centered nor with momentum:
    v = alpha * v + (1 - alpha) * g^2; p -= lr * g / (sqrt(v) + eps)."""

    def __init__(self, params: list[jt.Var], lr: float, alpha: float, eps: float) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps
        self.steps_taken = 0
        for group in self.param_groups:
            group["square_avg"] = [jt.zeros(p.shape, p.dtype).stop_grad() for p in group["params"]]

    def step(self, loss: jt.Var | None = None, retain_graph: bool = False) -> None:
        self.pre_step(loss, retain_graph)
        self.steps_taken += 1
        for group in self.param_groups:
            for p, g, v in zip(group["params"], group["grads"], group["square_avg"]):
                if p.is_stop_grad():
                    continue
                v.update(v * self.alpha + (1 - self.alpha) * g * g)
                p.update(p + (-self.lr) * g / (jt.sqrt(v) + self.eps))
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
