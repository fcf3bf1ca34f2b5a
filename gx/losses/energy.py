"""Losses of an autoencoder D, whose first output reconstructs the image it reads, and whose
reconstruction error is the image's energy: BEGAN's and EBGAN's; and EBGAN's pull-away term."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gx.errors import GxError
from gx.losses.adversarial import RECONSTRUCTION, AdversarialLoss

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.losses.judgement import Judgement
    from gx.losses.settings import ExperimentSettings
    from gx.models import GanModel


class EnergyLoss(AdversarialLoss):
    """A loss of D's reconstruction errors: D's first output has the shape of its image."""

    needs = RECONSTRUCTION
    averaged = False  # the papers' formulas over the batch, in either order

    def check(self, experiment: ExperimentSettings, model: GanModel) -> None:
        super().check(experiment, model)
        made = model.discriminator.output_value.shape
        if made != model.image_shape:
            raise GxError(
                f"train.loss {self.name} needs D to reconstruct its image (an autoencoder), "
                f"but D's first output is {made}, not the image's {model.image_shape}; make "
                "D's first output a decoder's image"
            )


class BoundaryEquilibrium(EnergyLoss):
    """BEGAN (Berthelot et al., 2017): an image's energy is D's L1 reconstruction error
    L(v) = E|v - D(v)| (over the batch and its pixels), and

    L_D = L(x) - k_t L(G(z)),   L_G = L(G(z)),
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = 0

    after each D update, from that update's L(x) and L(G(z)): the controller keeps
    E[L(G(z))] = gamma E[L(x)] (``train.began_gamma``: the diversity ratio; ``lambda_k``:
    ``train.began_lambda_k``). k_t is training state: checkpoints carry it. The metrics log
    L(x) and L(G(z)) as D(x) and D(G(z)).
    """

    name = "began"

    def __init__(self, gamma: float, lambda_k: float) -> None:
        self.gamma, self.lambda_k = gamma, lambda_k
        self.k = 0.0

    @staticmethod
    def energy(ops: Backend, judged: Judgement) -> Tensor:
        return ops.absolute(judged.images - judged.score).mean()

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return self.energy(ops, real) - self.k * self.energy(ops, fake)

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        return self.energy(ops, fake)

    def reported(self, ops: Backend, judged: Judgement) -> Tensor:
        return self.energy(ops, judged)

    def observe(self, d_real: float, d_fake: float) -> None:
        self.k = min(max(self.k + self.lambda_k * (self.gamma * d_real - d_fake), 0.0), 1.0)

    def get_state(self) -> dict[str, Any]:
        return {"k": self.k}

    def set_state(self, state: dict[str, Any]) -> None:
        self.k = float(state.get("k", 0.0))


class EnergyMargin(EnergyLoss):
    """EBGAN (Zhao et al., 2017): an image's energy is D's mean squared reconstruction error
    D(v) = mean over its pixels of (D(v) - v)^2, and with the margin m (``train.ebgan_margin``)

    L_D = E[D(x)] + E[relu(m - D(G(z)))],   L_G = E[D(G(z))]

    (the hinge per image, as in the paper). The metrics log the mean energies as D(x), D(G(z)).
    EBGAN-PT adds the pull-away term to G's loss (``train.pullaway_weight``).
    """

    name = "ebgan"

    def __init__(self, margin: float) -> None:
        self.margin = margin

    @staticmethod
    def energies(ops: Backend, judged: Judgement) -> Tensor:
        """Each image's energy, (N,)."""
        error = (judged.score - judged.images) ** 2
        return error.reshape(error.shape[0], -1).mean(1)

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return (
            self.energies(ops, real).mean()
            + ops.relu(self.margin - self.energies(ops, fake)).mean()
        )

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        return self.energies(ops, fake).mean()

    def reported(self, ops: Backend, judged: Judgement) -> Tensor:
        return self.energies(ops, judged).mean()


def pull_away(ops: Backend, weight: float, embedding: Tensor) -> Tensor:
    """EBGAN's pull-away term (Zhao et al., 2017) on D's embeddings S of G's N fakes:

    w * f_PT(S),   f_PT(S) = 1 / (N (N - 1)) sum_i sum_{j != i} (S_i . S_j / (|S_i| |S_j|))^2

    the mean squared cosine between different fakes' embeddings: G is pushed to make them
    orthogonal, i.e. varied. The diagonal's N cosines of 1 are subtracted from the full sum.
    """
    count = embedding.shape[0]
    rows = embedding.reshape(count, -1)
    unit = rows / ops.norms(rows).reshape(count, 1)
    cosines = ops.gram(unit)
    return weight * ((cosines**2).sum() - count) / (count * (count - 1))
