"""Dynamic loss scaling for fp16 training, one scale per network's update.

float16 keeps no number below 6e-8, and a GAN's gradients are mostly far smaller than its
losses, so in fp16 many would round to zero on their way back through the rounded layers. The
loss is multiplied by a power of two before the backward pass and every gradient divided by it
before the update (both exact in float32); when a gradient overflows to inf or NaN, the update
is skipped and the scale halved. The rule is torch.amp.GradScaler's with its defaults: start at
2^16, double after 2,000 updates in a row without overflow, halve on every overflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

INITIAL_SCALE = 2.0**16
GROWTH_INTERVAL = 2000


@dataclass
class LossScale:
    scale: float = INITIAL_SCALE
    finite_in_a_row: int = 0  # updates since the scale last changed
    skipped: int = 0  # updates skipped for overflowing gradients, over the whole run

    def update(self, finite: bool) -> None:
        """After one update: ``finite`` says whether its gradients were (and it was taken)."""
        if not finite:
            self.scale /= 2
            self.finite_in_a_row = 0
            self.skipped += 1
            return
        self.finite_in_a_row += 1
        if self.finite_in_a_row == GROWTH_INTERVAL:
            self.scale *= 2
            self.finite_in_a_row = 0

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LossScale:
        return cls(float(state["scale"]), int(state["finite_in_a_row"]), int(state["skipped"]))
