"""GAN losses and terms, each defined once over the backend's primitive operations.

``train.loss`` names an adversarial loss: what D is trained to output on real images and on
fakes, and what G is trained to make D output (gx.losses.adversarial: per-image losses;
gx.losses.relativistic: losses that compare real and fake scores; gx.losses.energy: losses of
an autoencoder D). Extra terms read more: gradient penalties differentiate D's input gradient
(gx.losses.penalties), the class and information terms and the pull-away term read D's heads
(gx.losses.heads, gx.losses.energy). Each says what it needs D to output and refuses, in one
line, a D that lacks it (``check_losses``). The trainer (gx.train.gan) asks them for D's and
G's terms; a backend only supplies the operations they are written in (``relu``,
``floored_log``, ``log_sigmoid``, ``cross_entropy``, ``input_gradients`` ... and tensor
arithmetic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gx.errors import GxError
from gx.losses.adversarial import (
    AdversarialLoss,
    BinaryCrossEntropy,
    BoundarySeeking,
    Hinge,
    LeastSquares,
    Wasserstein,
)
from gx.losses.energy import BoundaryEquilibrium, EnergyMargin, pull_away
from gx.losses.heads import (
    ClassTerm,
    HeadLayout,
    InformationTerm,
    class_head_width,
    head_layout,
    label_classes,
)
from gx.losses.judgement import Judgement
from gx.losses.penalties import GRADIENT_PENALTIES, GradientPenalty, PenaltyBatch, gradient_penalty
from gx.losses.relativistic import BatchSoftmax, RelativisticAverage, RelativisticStandard

if TYPE_CHECKING:
    from gx.losses.settings import ExperimentSettings, LossSettings
    from gx.models import GanModel

ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    loss.name: loss
    for loss in (
        BinaryCrossEntropy,
        LeastSquares,
        Hinge,
        Wasserstein,
        RelativisticStandard,
        RelativisticAverage,
        BatchSoftmax,
        BoundarySeeking,
        BoundaryEquilibrium,
        EnergyMargin,
    )
}


def adversarial_loss(train: LossSettings) -> AdversarialLoss:
    """The loss ``train.loss`` names, with its settings."""
    if train.loss not in ADVERSARIAL_LOSSES:
        raise GxError(f"unknown loss '{train.loss}'; use one of {', '.join(ADVERSARIAL_LOSSES)}")
    if train.loss == BoundaryEquilibrium.name:
        return BoundaryEquilibrium(train.began_gamma, train.began_lambda_k)
    if train.loss == EnergyMargin.name:
        return EnergyMargin(train.ebgan_margin)
    return ADVERSARIAL_LOSSES[train.loss]()


def check_losses(experiment: ExperimentSettings, model: GanModel) -> None:
    """Each loss and term the experiment trains with can read this model's D and G."""
    train = experiment.train
    adversarial_loss(train).check(experiment, model)
    if train.class_loss:
        ClassTerm.check(experiment, model)
    if train.info_categorical or train.info_continuous:
        InformationTerm.check(experiment, model)
    head_layout(experiment, model)
    penalty = gradient_penalty(train)
    if penalty is not None:
        penalty.check(experiment, model)


__all__ = [
    "ADVERSARIAL_LOSSES",
    "GRADIENT_PENALTIES",
    "AdversarialLoss",
    "ClassTerm",
    "GradientPenalty",
    "HeadLayout",
    "InformationTerm",
    "Judgement",
    "PenaltyBatch",
    "adversarial_loss",
    "check_losses",
    "class_head_width",
    "gradient_penalty",
    "head_layout",
    "label_classes",
    "pull_away",
]
