"""The adversarial losses ``train.loss`` names, with the papers' formulas and what D must output.

Each is one definition for both backends, written over the backend's primitives. D's outputs
arrive as they are (any shape (N, ...)); losses reduce a per-element value against a scalar
target, so no (N, 1, 1, 1) against (N,) broadcasting can creep in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gx.errors import GxError

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.config import Experiment
    from gx.models import GanModel

# What a loss needs D's first output to be
PROBABILITY = "a probability"  # in (0, 1): D ends in a sigmoid
SCORE = "a raw score"  # any real number: D ends without a sigmoid


class AdversarialLoss:
    """D's loss from its outputs on real images and on fakes, and G's from D's on fakes."""

    name: ClassVar[str] = ""
    needs: ClassVar[str] = PROBABILITY
    # whether train.real_label (a soft target for real images) means anything to this loss
    takes_real_label: ClassVar[bool] = False

    def check(self, experiment: Experiment, model: GanModel) -> None:
        """Refuse a discriminator whose output this loss cannot read, in one line."""
        if self.needs == SCORE and ends_in_sigmoid(model):
            fix = "d_output: logit" if experiment.model.name == "cdcgan" else "no final sigmoid"
            raise GxError(
                f"train.loss {self.name} needs D's raw scores, but '{experiment.model.name}' "
                f"ends D in a sigmoid; give it {fix}, or use train.loss bce"
            )
        if not self.takes_real_label and experiment.train.real_label != 1.0:
            raise GxError(
                f"train.real_label only applies to the bce and mse losses; remove it for "
                f"{self.name}"
            )

    def discriminator(
        self, ops: Backend, on_real: Tensor, on_fake: Tensor, real_label: float
    ) -> Tensor:
        return self.on_real(ops, on_real, real_label) + self.on_fake(ops, on_fake)

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        raise NotImplementedError

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        raise NotImplementedError

    def generator(self, ops: Backend, on_fake: Tensor) -> Tensor:
        raise NotImplementedError


def floored_bce(ops: Backend, prediction: Tensor, target: float) -> Tensor:
    """-mean(t max(log p, -100) + (1 - t) max(log(1 - p), -100)), PyTorch's BCELoss rule,
    differentiated through those operations (``floored_log`` gives log(0) a finite gradient)."""
    # A term weighted by exactly 0 adds exactly 0 to the value and to every gradient, so for
    # the usual targets 1 and 0 it is skipped: the same numbers, without the unused floored
    # log (forward and backward about 3% of an MLP GAN's training step on CPU).
    if target == 1.0:
        return -ops.floored_log(prediction).mean()
    if target == 0.0:
        return -ops.floored_log(1.0 - prediction).mean()
    return -(
        target * ops.floored_log(prediction) + (1.0 - target) * ops.floored_log(1.0 - prediction)
    ).mean()


class BinaryCrossEntropy(AdversarialLoss):
    """The original GAN loss (Goodfellow et al., 2014), with G's non-saturating form:

    L_D = -E[log D(x)] - E[log(1 - D(G(z)))],   L_G = -E[log D(G(z))]

    with D(x)'s target ``train.real_label`` (1, or less for one-sided label smoothing).
    """

    name = "bce"
    takes_real_label = True

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return floored_bce(ops, scores, real_label)

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return floored_bce(ops, scores, 0.0)

    def generator(self, ops: Backend, on_fake: Tensor) -> Tensor:
        return floored_bce(ops, on_fake, 1.0)


class LeastSquares(AdversarialLoss):
    """Least squares (LSGAN, Mao et al., 2017), with targets 1 for real images and 0 for fakes:

    L_D = E[(D(x) - 1)^2] + E[D(G(z))^2],   L_G = E[(D(G(z)) - 1)^2]
    """

    name = "mse"
    takes_real_label = True

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return ((scores - real_label) ** 2).mean()

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return ((scores - 0.0) ** 2).mean()

    def generator(self, ops: Backend, on_fake: Tensor) -> Tensor:
        return ((on_fake - 1.0) ** 2).mean()


class Hinge(AdversarialLoss):
    """The hinge loss (Lim and Ye, 2017; SAGAN, BigGAN) on D's raw scores:

    L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],   L_G = -E[D(G(z))]
    """

    name = "hinge"
    needs = SCORE

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return ops.relu(1.0 - scores).mean()

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return ops.relu(1.0 + scores).mean()

    def generator(self, ops: Backend, on_fake: Tensor) -> Tensor:
        return -on_fake.mean()


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    loss.name: loss for loss in (BinaryCrossEntropy, LeastSquares, Hinge)
}


def ends_in_sigmoid(model: GanModel) -> bool:
    """Whether D's first output is a sigmoid's (a probability, not a raw score), perhaps
    reshaped after it."""
    return model.discriminator.output_kind == "sigmoid"


def adversarial_loss(name: str) -> AdversarialLoss:
    if name not in ADVERSARIAL_LOSSES:
        raise GxError(f"unknown loss '{name}'; use one of {', '.join(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[name]()
