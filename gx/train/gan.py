"""One GAN training step, written once against the backend interface.

Two step orders, as in the reference experiments:

- ``d_then_g`` (cdcgan, dcgan): D on a real batch (target ``real_label``) and on fakes from fresh
  noise and random labels (target 0), d_loss = real + fake; then G on fresh noise (target 1).
- ``g_then_d`` (cgan, gan): G on fresh noise (target 1); then D on the real batch and on the same
  fakes, detached, d_loss = (real + fake) / 2.

With ``train.class_loss`` = w > 0 (AC-GAN, Odena et al. 2017), D's output holds 1 + classes
values per image: its score, then class logits. D adds w times the cross-entropy of its class
logits on the real images (their labels) and on the fakes (the labels they were drawn for),
halved with the rest of its loss in ``g_then_d``; G adds w times the cross-entropy on its fakes.
The score alone goes into the adversarial loss and the logged D(x) and D(G(z)).

With ``d_steps`` = k, D trains on every batch and G on every k-th. Noise and labels come from
gx's seeded numpy RNG, so every backend sees the same numbers. In a run of several processes
(gx.distributed) each draws the global batch's noise and keeps its own slice, and the losses
reported are the global batch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gx.backends.base import Backend, Tensor
from gx.checkpoint import Checkpoint
from gx.config import Experiment, OptimizerSettings
from gx.distributed import World
from gx.errors import GxError
from gx.losses import adversarial_loss, class_logits_output, class_term, score_and_heads
from gx.models import GanModel
from gx.spec import MaskSource
from gx.train.ema import WeightAverage
from gx.train.loss_scale import LossScale
from gx.train.schedule import learning_rate

# Independent numpy streams derived from the experiment seed: np.random.default_rng([seed, n]).
STREAM_G_INIT, STREAM_D_INIT, STREAM_NOISE, STREAM_G_MASKS, STREAM_D_MASKS, STREAM_SAMPLES = range(
    6
)


class NonFiniteLoss(GxError):
    """A loss became NaN or inf; the state before that update is kept."""


@dataclass
class StepResult:
    d_loss: float
    d_real: float
    d_fake: float
    g_loss: float | None  # None on steps where G did not train (d_steps > 1)


class GanTrainer:
    def __init__(
        self,
        backend: Backend,
        model: GanModel,
        experiment: Experiment,
        world: World = World(),
        rounding: str = "nearest",
    ) -> None:
        self.backend, self.model, self.experiment, self.world = backend, model, experiment, world
        seed, train = experiment.seed, experiment.train
        self.order, self.loss = train.order, adversarial_loss(train.loss)
        self.real_label, self.d_steps = train.real_label, train.d_steps
        self.class_loss = train.class_loss
        self.noise_rng = np.random.default_rng([seed, STREAM_NOISE])
        self.g_masks = MaskSource([seed, STREAM_G_MASKS], world)
        self.d_masks = MaskSource([seed, STREAM_D_MASKS], world)
        self.generator = backend.compile(
            model.generator, [seed, STREAM_G_INIT], self.g_masks, rounding
        )
        self.discriminator = backend.compile(
            model.discriminator, [seed, STREAM_D_INIT], self.d_masks, rounding
        )
        self.g_optimizer = self._optimizer(
            self.generator, model.generator, experiment.optimizer.generator
        )
        self.d_optimizer = self._optimizer(
            self.discriminator, model.discriminator, experiment.optimizer.discriminator
        )
        self.step_index = 0
        self.rates: tuple[float, float] | None = None  # what the optimizers were last given
        # fp16 scales each network's loss (gx.train.loss_scale); float32 and bf16 need not
        self.loss_scales: dict[str, LossScale] = (
            {"generator": LossScale(), "discriminator": LossScale()}
            if backend.precision == "fp16"
            else {}
        )
        self.average: WeightAverage | None = None
        if train.ema_decay is not None:
            self.average = WeightAverage(
                train.ema_decay,
                train.ema_start,
                set(backend.state_tensors(self.generator, model.generator, trainable_only=True)),
                self.generator_weights(),
            )
            # A second generator, evaluated with the average's weights, for the sample grids.
            self.average_generator = backend.compile(model.generator, 0)

    def generator_weights(self) -> dict[str, np.ndarray]:
        """G's parameters and buffers as numpy, read at once: on torch they are views of the
        live tensors (no copy), which the next update overwrites."""
        tensors = self.backend.state_tensors(self.generator, self.model.generator)
        return {key: self.backend.numpy(tensor) for key, tensor in tensors.items()}

    def _optimizer(self, module: Any, spec: Any, settings: OptimizerSettings) -> Any:
        parameters = self.backend.state_tensors(module, spec, trainable_only=True)
        return self.backend.optimizer(
            parameters, settings.kind, settings.lr, settings.betas, settings.eps, settings.momentum
        )

    # -- inputs -------------------------------------------------------------------------------
    def draw_inputs(self, count: int) -> dict[str, np.ndarray]:
        """Noise (and uniformly random labels) for ``count`` fakes, from gx's RNG."""
        inputs: dict[str, np.ndarray] = {
            "z": self.noise_rng.standard_normal((count, *self.model.noise_shape), dtype=np.float32)
        }
        if self.model.conditional:
            inputs["label"] = self.noise_rng.integers(0, self.model.classes, count)
        return inputs

    def _tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {key: self.backend.tensor(value) for key, value in arrays.items()}

    def _fake_inputs(self, count: int) -> dict[str, Tensor]:
        """This process's ``count`` rows of the global batch's noise and labels."""
        drawn = self.draw_inputs(count * self.world.size)
        return self._tensors({key: self.world.take(value) for key, value in drawn.items()})

    def _discriminate(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        """D's scores (its first output), and the class term (0 without train.class_loss)."""
        inputs = {"image": images}
        if labels is not None:
            inputs["label"] = labels
        output = self.discriminator(inputs)
        if not self.class_loss:
            return score_and_heads(output)[0], 0.0
        scores, logits = class_logits_output(output)
        return scores, class_term(self.backend, self.class_loss, logits, labels)

    def _global_means(self, *values: Tensor) -> list[float]:
        """Means of the processes' scalars: each is a mean over an equal share of the batch."""
        local = np.array([self.backend.scalar(value) for value in values])
        if self.world.size == 1:
            return [float(value) for value in local]
        return [float(value) for value in self.backend.all_reduce_sum(local) / self.world.size]

    def _checked(self, value: float, which: str) -> float:
        # The global value: every process sees the same one, so all of them stop together.
        if not np.isfinite(value):
            raise NonFiniteLoss(
                f"the {which} loss became {value} at step {self.step_index + 1}; "
                "lower the learning rate or check the data"
            )
        return value

    # -- the step -------------------------------------------------------------------------------
    def step(self, real_images: Tensor, real_labels: Tensor | None) -> StepResult:
        count = real_images.shape[0]
        train_g = self.step_index % self.d_steps == self.d_steps - 1
        backend = self.backend
        g_loss = None
        if self.order == "g_then_d":
            fake_inputs = self._fake_inputs(count)
            fakes = self.generator(fake_inputs)
            if train_g:
                g_loss = self._generator_update(fakes, fake_inputs.get("label"))
            fakes = backend.detach(fakes)
        else:
            fake_inputs = self._fake_inputs(count)
            with backend.no_grad():
                fakes = self.generator(fake_inputs)
        d_loss, d_real, d_fake = self._discriminator_update(
            real_images, real_labels, fakes, fake_inputs.get("label")
        )
        if self.order == "d_then_g" and train_g:
            fresh = self._fake_inputs(count)
            g_loss = self._generator_update(self.generator(fresh), fresh.get("label"))
        self.step_index += 1
        return StepResult(d_loss, d_real, d_fake, g_loss)

    def _generator_update(self, fakes: Tensor, labels: Tensor | None) -> float:
        scores, class_term = self._discriminate(fakes, labels)
        loss = self.loss.generator(self.backend, scores)
        if self.class_loss:
            loss = loss + class_term
        (mean,) = self._global_means(loss)
        value = self._checked(mean, "generator")
        self._minimize("generator", self.g_optimizer, loss)
        if self.average is not None:
            self.average.update(self.generator_weights(), self.step_index + 1)
        return value

    def _discriminator_update(
        self,
        real_images: Tensor,
        real_labels: Tensor | None,
        fakes: Tensor,
        fake_labels: Tensor | None,
    ) -> tuple[float, float, float]:
        backend = self.backend
        on_real, real_class_loss = self._discriminate(real_images, real_labels)
        on_fake, fake_class_loss = self._discriminate(fakes, fake_labels)
        loss = self.loss.discriminator(backend, on_real, on_fake, self.real_label)
        if self.class_loss:
            loss = loss + real_class_loss + fake_class_loss
        if self.order == "g_then_d":
            loss = loss / 2
        value, d_real, d_fake = self._global_means(loss, on_real.mean(), on_fake.mean())
        value = self._checked(value, "discriminator")
        self._minimize("discriminator", self.d_optimizer, loss)
        return value, d_real, d_fake

    def _minimize(self, network: str, optimizer: Any, loss: Tensor) -> None:
        scale = self.loss_scales.get(network)
        if scale is None:
            self.backend.minimize(optimizer, loss)
        else:
            scale.update(self.backend.minimize(optimizer, loss, scale.scale))

    # -- learning rates -------------------------------------------------------------------------
    def set_rates(self, step: int, epoch: int, total: int) -> tuple[float, float]:
        """Give the optimizers the rates of 0-based ``step`` in ``epoch`` of a run of ``total``
        steps (gx.train.schedule), when they changed; return (lr_g, lr_d)."""
        settings, experiment = self.experiment.optimizer, self.experiment
        rates = (
            learning_rate(settings.generator.lr, experiment, step, epoch, total),
            learning_rate(settings.discriminator.lr, experiment, step, epoch, total),
        )
        if rates != self.rates:
            self.backend.set_learning_rate(self.g_optimizer, rates[0])
            self.backend.set_learning_rate(self.d_optimizer, rates[1])
            self.rates = rates
        return rates

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Images from fixed inputs, in eval mode (running statistics, no dropout), as numpy,
        from the average of G's weights when the run keeps one.

        Eval mode leaves the training state alone: no batch-norm statistics are updated and no
        dropout masks are drawn, so sampling never changes the trajectory.
        """
        backend, generator = self.backend, self.generator
        if self.average is not None:
            generator = self.average_generator
            backend.load_weights(
                generator, self.model.generator, self.average.weights, "the average"
            )
        backend.set_training(generator, False)
        with backend.no_grad():
            images = backend.numpy(generator(self._tensors(inputs)))
        if generator is self.generator:  # back to training; the average's module stays in eval
            backend.set_training(generator, True)
        return images

    # -- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        backend = self.backend
        return {
            "generator": backend.get_weights(self.generator, self.model.generator),
            "discriminator": backend.get_weights(self.discriminator, self.model.discriminator),
            "optimizer_g": backend.get_optimizer_state(self.g_optimizer),
            "optimizer_d": backend.get_optimizer_state(self.d_optimizer),
            "generator_ema": None if self.average is None else dict(self.average.weights),
            "rng": {
                "noise": self.noise_rng.bit_generator.state,
                "g_masks": self.g_masks.get_state(),
                "d_masks": self.d_masks.get_state(),
            },
            "step": self.step_index,
            **self._loss_scale_state(),
        }

    def _loss_scale_state(self) -> dict[str, Any]:
        """fp16's loss scales, for the checkpoint; nothing in float32 and bf16."""
        if not self.loss_scales:
            return {}
        return {"loss_scale": {name: scale.state() for name, scale in self.loss_scales.items()}}

    def restore(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from ``checkpoint``, whichever backend wrote it: weights and batch-norm
        statistics, optimizer slots and step counts, every RNG stream, and the step."""
        backend, state = self.backend, checkpoint.state
        backend.load_weights(self.generator, self.model.generator, checkpoint.generator, source)
        backend.load_weights(
            self.discriminator, self.model.discriminator, checkpoint.discriminator, source
        )
        backend.load_optimizer_state(self.g_optimizer, checkpoint.optimizer_g)
        backend.load_optimizer_state(self.d_optimizer, checkpoint.optimizer_d)
        if self.average is not None:
            # A checkpoint written without an average (a run that kept none) starts it from G.
            self.average.load(checkpoint.generator_ema or checkpoint.generator)
        self.noise_rng.bit_generator.state = state["rng"]["noise"]
        self.g_masks.set_state(state["rng"]["g_masks"])
        self.d_masks.set_state(state["rng"]["d_masks"])
        self.step_index = state["step"]
        # a checkpoint of another precision has no scales: fp16 then starts its own
        for name, saved in state.get("loss_scale", {}).items():
            if name in self.loss_scales:
                self.loss_scales[name] = LossScale.from_state(saved)
