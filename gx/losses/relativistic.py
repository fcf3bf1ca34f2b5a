"""Losses that judge the batch's real and fake scores against each other: the relativistic
losses and softmax GAN's batch softmax. G's loss reads D's scores on the real batch too.

In a run of several processes (gx.distributed) the batch these losses compare within is each
process's share of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gx.losses.adversarial import SCORE, AdversarialLoss

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.losses.judgement import Judgement


class RelativisticStandard(AdversarialLoss):
    """The relativistic standard loss (RSGAN, Jolicoeur-Martineau, 2019) on D's raw scores C,
    over pairs of a real image and a fake (the i-th of each batch):

    L_D = -E[log sigmoid(C(x_r) - C(x_f))],   L_G = -E[log sigmoid(C(x_f) - C(x_r))]
    """

    name = "relativistic"
    needs = SCORE
    generator_reads_real = True
    averaged = False  # one term over the pairs, as the paper writes it, in either order

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return -ops.log_sigmoid(real.score - fake.score).mean()

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        assert real is not None
        return -ops.log_sigmoid(fake.score - real.score).mean()


class RelativisticAverage(AdversarialLoss):
    """The relativistic average loss (RaSGAN, Jolicoeur-Martineau, 2019): each score against
    the mean score of the other batch,

    L_D = -E[log sigmoid(C(x_r) - E[C(x_f)])] - E[log(1 - sigmoid(C(x_f) - E[C(x_r)]))]
    L_G = -E[log sigmoid(C(x_f) - E[C(x_r)])] - E[log(1 - sigmoid(C(x_r) - E[C(x_f)]))]

    with log(1 - sigmoid(a)) computed as log sigmoid(-a).
    """

    name = "relativistic_average"
    needs = SCORE
    generator_reads_real = True

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return self._terms(ops, real.score, fake.score)

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        assert real is not None
        return self._terms(ops, fake.score, real.score)

    @staticmethod
    def _terms(ops: Backend, above: Tensor, below: Tensor) -> Tensor:
        """-E[log sigmoid(above - E[below])] - E[log sigmoid(-(below - E[above]))]."""
        return (
            -ops.log_sigmoid(above - below.mean()).mean()
            - ops.log_sigmoid(-(below - above.mean())).mean()
        )


class BatchSoftmax(AdversarialLoss):
    """Softmax GAN (Lin, 2017): D's outputs are energies mu, and the batch B of real images B+
    and fakes B- is one softmax over -mu. D's target puts the batch's mass on the real images,
    G's spreads it over every image:

    L_D = 1/|B+| sum_{B+} mu(x) + log Z,   L_G = 1/|B| sum_{B} mu(x) + log Z,
    Z = sum_{x in B} exp(-mu(x))
    """

    name = "softmax"
    generator_reads_real = True
    averaged = False  # one softmax over the whole batch

    def discriminator(
        self, ops: Backend, real: Judgement, fake: Judgement, real_label: float
    ) -> Tensor:
        return real.score.mean() + ops.logsumexp([-real.score, -fake.score])

    def generator(self, ops: Backend, fake: Judgement, real: Judgement | None) -> Tensor:
        assert real is not None
        # the two batches are equally large: the mean over B is the mean of their means
        mean = (real.score.mean() + fake.score.mean()) / 2
        return mean + ops.logsumexp([-real.score, -fake.score])
