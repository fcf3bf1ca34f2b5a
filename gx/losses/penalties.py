"""Gradient penalties (``train.gradient_penalty``): terms of D's loss in the gradient of D's
score with respect to its input image, ∇_x D(x).

Each is one definition for both backends: the backend's ``input_gradients`` gives ∇_x D(x)
as values that D's update differentiates again (double backward). Interpolation weights and
perturbations are drawn in numpy from gx's seeded penalty stream (gx.train.gan), the global
batch's draws and each process's share of them, so every backend sees the same numbers.
The weight (``train.penalty_weight``; null: the paper's) multiplies each term below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

from gx.errors import GxError
from gx.losses.adversarial import RECONSTRUCTION

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.losses.judgement import Judgement
    from gx.losses.settings import ExperimentSettings, LossSettings
    from gx.models import GanModel


@dataclass
class PenaltyBatch:
    """What a penalty reads in D's update."""

    ops: Backend
    real: Judgement  # D's pass on the real batch (its images watched, where the penalty reads it)
    fake: Judgement  # and on the fakes
    critic: Callable[[Tensor], Tensor]  # D's first output on other images (the real labels)
    uniform: Callable[[tuple[int, ...]], Tensor]  # U[0, 1) draws, (N, *shape), from gx's stream
    spread: Callable[[Tensor], float]  # the standard deviation of the global batch's pixels


class GradientPenalty:
    name: ClassVar[str] = ""
    default_weight: ClassVar[float] = 10.0
    # D's passes whose input gradients the penalty reads: their images must be watched
    watches_real: ClassVar[bool] = False
    watches_fake: ClassVar[bool] = False

    def __init__(self, weight: float | None, power: float) -> None:
        self.weight = self.default_weight if weight is None else weight
        self.power = power

    def check(self, experiment: ExperimentSettings, model: GanModel) -> None:
        from gx.losses import ADVERSARIAL_LOSSES  # the registry imports this module

        if ADVERSARIAL_LOSSES[experiment.train.loss].needs == RECONSTRUCTION:
            raise GxError(
                f"train.gradient_penalty {self.name} differentiates D's score, but train.loss "
                f"{experiment.train.loss} reads a reconstruction; use it with a loss of scores"
            )

    def term(self, batch: PenaltyBatch) -> Tensor:
        raise NotImplementedError


def unit_distance(ops: Backend, critic: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """E[(|∇_x D(x)| - 1)^2] at ``points``: how far D's gradient norm is from 1 there."""
    watched = ops.watch(points)
    (gradients,) = ops.input_gradients(critic(watched), [watched])
    return ((ops.norms(gradients) - 1.0) ** 2).mean()


def squared_norms(ops: Backend, judged: Judgement) -> Tensor:
    """|∇_x D(x)|^2 of each image of a pass whose images were watched, (N,)."""
    (gradients,) = ops.input_gradients(judged.score, [judged.images])
    squares = gradients * gradients
    return squares.reshape(squares.shape[0], -1).sum(1)


class Interpolated(GradientPenalty):
    """WGAN-GP (Gulrajani et al., 2017), on points between real images and fakes:

    w * E[(|∇ D(x^)| - 1)^2],   x^ = e x + (1 - e) G(z),   e ~ U[0, 1] per image pair

    (paper: w = 10), D's pass at x^ with the real images' labels.
    """

    name = "wgan_gp"

    def term(self, batch: PenaltyBatch) -> Tensor:
        real, fake = batch.real.images, batch.fake.images
        share = batch.uniform((1,) * (len(real.shape) - 1))
        points = share * real + (1.0 - share) * fake
        return self.weight * unit_distance(batch.ops, batch.critic, points)


class Perturbed(GradientPenalty):
    """DRAGAN (Kodali et al., 2017), on real images perturbed by noise on the scale of the
    data:

    w * E[(|∇ D(x^)| - 1)^2],   x^ = x + a * 0.5 std(x) u,   a, u ~ U[0, 1] per pixel

    (paper: w = 10; the perturbation of the authors' code, std over the batch's pixels).
    """

    name = "dragan"

    def term(self, batch: PenaltyBatch) -> Tensor:
        real = batch.real.images
        per_image = tuple(real.shape[1:])
        share, noise = batch.uniform(per_image), batch.uniform(per_image)
        points = real + share * (0.5 * batch.spread(real)) * noise
        return self.weight * unit_distance(batch.ops, batch.critic, points)


class Divergence(GradientPenalty):
    """WGAN-div (Wu et al., 2018), on the real images and the fakes themselves:

    w/2 * (E[|∇ D(x)|^p] + E[|∇ D(G(z))|^p])

    (paper: w = k = 2, p = 6, ``train.penalty_power``), from D's own passes of the update.
    """

    name = "wgan_div"
    default_weight = 2.0
    watches_real = watches_fake = True

    def term(self, batch: PenaltyBatch) -> Tensor:
        ops, half = batch.ops, self.power / 2
        real = (squared_norms(ops, batch.real) ** half).mean()
        fake = (squared_norms(ops, batch.fake) ** half).mean()
        return self.weight / 2 * (real + fake)


class RealGradient(GradientPenalty):
    """R1 (Mescheder et al., 2018), on the real images:

    w/2 * E[|∇ D(x)|^2]

    (w = gamma, 10 in the paper's experiments), from D's own pass on the real batch.
    """

    name = "r1"
    watches_real = True

    def term(self, batch: PenaltyBatch) -> Tensor:
        return self.weight / 2 * squared_norms(batch.ops, batch.real).mean()


GRADIENT_PENALTIES: dict[str, type[GradientPenalty]] = {
    penalty.name: penalty for penalty in (Interpolated, Perturbed, Divergence, RealGradient)
}


def gradient_penalty(train: LossSettings) -> GradientPenalty | None:
    """The penalty ``train.gradient_penalty`` names, None for none."""
    if train.gradient_penalty == "none":
        return None
    return GRADIENT_PENALTIES[train.gradient_penalty](train.penalty_weight, train.penalty_power)
