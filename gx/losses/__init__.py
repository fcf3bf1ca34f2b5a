"""GAN losses, each defined once over the backend's primitive operations.

``train.loss`` names an adversarial loss (gx.losses.adversarial): what D is trained to output on
real images and on fakes, and what G is trained to make D output. Extra terms (the AC-GAN class
loss, gx.losses.heads) read D's other outputs. The trainer (gx.train.gan) asks a loss for D's and
G's terms; a backend only supplies the operations they are written in (``relu``,
``floored_log``, ``cross_entropy`` and tensor arithmetic).
"""

from __future__ import annotations

from gx.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    AdversarialLoss,
    BinaryCrossEntropy,
    Hinge,
    LeastSquares,
    adversarial_loss,
)
from gx.losses.heads import check_class_head, class_logits_output, class_term, score_and_heads

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "BinaryCrossEntropy",
    "Hinge",
    "LeastSquares",
    "adversarial_loss",
    "check_class_head",
    "class_logits_output",
    "class_term",
    "score_and_heads",
]
