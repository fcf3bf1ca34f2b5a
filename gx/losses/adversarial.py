"""The adversarial losses ``train.loss`` names, with the papers' formulas and what D must output.

Each is one definition for both backends, written over the backend's primitives. A loss reads
D's judgement of a batch (gx.losses.judgement): its first output, as it is (any shape (N, ...)),
and for some losses the images it judged. The losses here score each image on its own, a real
term plus a fake term, and reduce a per-element value against a scalar target, so no
(N, 1, 1, 1) against (N,) broadcasting can creep in. The losses that compare real and fake
scores with each other are in gx.losses.relativistic, those of an autoencoder D in
gx.losses.energy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gx.errors import GxError

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.losses.judgement import Judgement
    from gx.losses.settings import ExperimentSettings
    from gx.models import GanModel

# What a loss needs D's first output to be
PROBABILITY = "a probability"  # in (0, 1): D ends in a sigmoid (or any number, for mse)
SCORE = "a raw score"  # any real number: D ends without a sigmoid
RECONSTRUCTION = "a reconstruction"  # an image of the input's shape: D is an autoencoder


class AdversarialLoss:
    """D's loss from its judgements of real images and of fakes, and G's from D's of fakes."""

    name: ClassVar[str] = ""
    needs: ClassVar[str] = PROBABILITY
    # whether train.real_label (a soft target for real images) means anything to this loss
    takes_real_label: ClassVar[bool] = False
    # whether G's loss also reads D's judgement of the real batch (relativistic, softmax)
    generator_reads_real: ClassVar[bool] = False
    # Whether the g_then_d order halves D's loss: the recipes of that order average the real and
    # fake terms of the per-image losses; the others are one formula over the batch.
    averaged: ClassVar[bool] = True

    def check(self, experiment: ExperimentSettings, model: GanModel) -> None:
        """Refuse a discriminator whose output this loss cannot read, in one line."""
        if self.needs == SCORE and ends_in_sigmoid(model):
            fix = "d_output: logit" if experiment.model.name == "cdcgan" else "no final sigmoid"
            raise GxError(
                f"train.loss {self.name} needs D's raw scores, but '{experiment.model.name}' "
                f"ends D in a sigmoid; give it {fix}, or use train.loss bce"
            )
        if not self.takes_real_label and experiment.train.real_label != 1.0:
            raise GxError(
                f"train.real_label only applies to the bce, mse and boundary_seeking losses; "
                f"remove it for {self.name}"
            )

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        raise NotImplementedError

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        """G's loss; ``real`` is D's judgement of the real batch when ``generator_reads_real``."""
        raise NotImplementedError

    def reported(self, ops: Backend, judged: Judgement) -> Tensor:
        """What the metrics log as D(x) and D(G(z)): D's mean score."""
        return judged.score.mean()

    def observe(self, d_real: float, d_fake: float) -> None:
        """After D's update, the figures ``reported`` gave for it (BEGAN's controller)."""

    def get_state(self) -> dict[str, Any]:
        """The loss's own training state, which checkpoints carry (none for most)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``get_state``'s value (a checkpoint written without one: {})."""


class PerImageLoss(AdversarialLoss):
    """A loss of D's scores image by image: D's is a real term plus a fake term."""

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return self.on_real(ops, real.score, real_label) + self.on_fake(ops, fake.score)

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        return self.generator_term(ops, fake.score)

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        raise NotImplementedError

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
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


class BinaryCrossEntropy(PerImageLoss):
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

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
        return floored_bce(ops, scores, 1.0)


class LeastSquares(PerImageLoss):
    """Least squares (LSGAN, Mao et al., 2017), with targets 1 for real images and 0 for fakes:

    L_D = E[(D(x) - 1)^2] + E[D(G(z))^2],   L_G = E[(D(G(z)) - 1)^2]
    """

    name = "mse"
    takes_real_label = True

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return ((scores - real_label) ** 2).mean()

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return ((scores - 0.0) ** 2).mean()

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
        return ((scores - 1.0) ** 2).mean()


class Hinge(PerImageLoss):
    """The hinge loss (Lim and Ye, 2017; SAGAN, BigGAN) on D's raw scores:

    L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],   L_G = -E[D(G(z))]
    """

    name = "hinge"
    needs = SCORE

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return ops.relu(1.0 - scores).mean()

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return ops.relu(1.0 + scores).mean()

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
        return -scores.mean()


class Wasserstein(PerImageLoss):
    """The Wasserstein loss (WGAN, Arjovsky et al., 2017) on the critic's raw scores:

    L_D = -E[D(x)] + E[D(G(z))],   L_G = -E[D(G(z))]

    D must be kept Lipschitz: with ``train.clip_d`` (WGAN's weight clipping) or a gradient
    penalty (``train.gradient_penalty``: wgan_gp, wgan_div).
    """

    name = "wasserstein"
    needs = SCORE
    averaged = False  # the critic's loss, as the WGAN papers write it, in either order

    def on_real(self, ops: Backend, scores: Tensor, real_label: float) -> Tensor:
        return -scores.mean()

    def on_fake(self, ops: Backend, scores: Tensor) -> Tensor:
        return scores.mean()

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
        return -scores.mean()


class BoundarySeeking(BinaryCrossEntropy):
    """The boundary-seeking loss (BGAN, Hjelm et al., 2018): D as in the original GAN, G moved
    towards D's decision boundary, where D(G(z)) = 1/2:

    L_D = -E[log D(x)] - E[log(1 - D(G(z)))],   L_G = 1/2 E[(log D(G(z)) - log(1 - D(G(z))))^2]

    the logs floored at -100 as in bce. D must end in a sigmoid.
    """

    name = "boundary_seeking"

    def check(self, experiment: ExperimentSettings, model: GanModel) -> None:
        super().check(experiment, model)
        if not ends_in_sigmoid(model):
            raise GxError(
                "train.loss boundary_seeking reads D's probabilities: end D in a sigmoid "
                "(cdcgan: d_output: probability)"
            )

    def generator_term(self, ops: Backend, scores: Tensor) -> Tensor:
        logit = ops.floored_log(scores) - ops.floored_log(1.0 - scores)
        return 0.5 * (logit**2).mean()


def ends_in_sigmoid(model: GanModel) -> bool:
    """Whether D's first output is a sigmoid's (a probability, not a raw score), perhaps
    reshaped after it."""
    return model.discriminator.output_kind == "sigmoid"
