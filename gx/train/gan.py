"""One GAN training step, written once against the backend interface.

Two step orders, as in the reference experiments:

- ``d_then_g`` (cdcgan, dcgan): D on a real batch and on fakes from fresh noise and random
  labels; then G on fresh noise.
- ``g_then_d`` (cgan, gan): G on fresh noise; then D on the real batch and on the same fakes,
  detached. D's loss is halved in this order for the losses whose recipes average its real and
  fake terms (bce, mse, hinge, boundary_seeking, relativistic_average: ``averaged``).

The losses and terms are gx.losses': ``train.loss`` (D's and G's adversarial losses), the class
term (``train.class_loss``, AC-GAN and SGAN: halved with D's adversarial loss, where it is), the
pull-away term (``train.pullaway_weight``, in G's loss), a gradient penalty
(``train.gradient_penalty``, added to D's loss as it is), and InfoGAN's information loss
(``train.info_categorical``, ``train.info_continuous``: after each G update, one update of G and
D's code heads together on fresh fakes, with the third optimizer ``optimizer.info``). With
``train.clip_d`` D's parameters are clamped after each of its updates (WGAN).

With ``d_steps`` = k, D trains on every batch and G on every k-th. Noise, labels, codes and the
penalties' draws come from gx's seeded numpy streams, so every backend sees the same numbers. In
a run of several processes (gx.distributed) each draws the global batch's and keeps its own
slice, and the losses reported are the global batch's.
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
from gx.losses import (
    ClassTerm,
    InformationTerm,
    Judgement,
    PenaltyBatch,
    adversarial_loss,
    gradient_penalty,
    head_layout,
    label_classes,
    pull_away,
)
from gx.models import GanModel
from gx.spec import MaskSource
from gx.train.ema import WeightAverage
from gx.train.loss_scale import LossScale
from gx.train.schedule import learning_rate

# Independent numpy streams derived from the experiment seed: np.random.default_rng([seed, n]).
STREAM_G_INIT, STREAM_D_INIT, STREAM_NOISE, STREAM_G_MASKS, STREAM_D_MASKS, STREAM_SAMPLES = range(
    6
)
STREAM_PENALTY = 6  # the gradient penalties' interpolation weights and perturbations


class NonFiniteLoss(GxError):
    """A loss became NaN or inf; the state before that update is kept."""


@dataclass
class StepResult:
    d_loss: float
    d_real: float
    d_fake: float
    g_loss: float | None  # None on steps where G did not train (d_steps > 1)
    info_loss: float | None = None  # InfoGAN's information loss, where the run trains one


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
        self.order, self.loss = train.order, adversarial_loss(train)
        self.real_label, self.d_steps = train.real_label, train.d_steps
        self.heads = head_layout(experiment, model)
        self.class_term: ClassTerm | None = None
        if train.class_loss:
            fake_class = self.heads.width(model) - 1 if train.fake_class else None
            self.class_term = ClassTerm(train.class_loss, fake_class)
        self.penalty = gradient_penalty(train)
        self.pullaway_weight, self.clip_limit = train.pullaway_weight, train.clip_d
        # how many classes the real labels fall in; 0: the steps read no real labels
        self.label_classes = label_classes(experiment, model)
        self.noise_rng = np.random.default_rng([seed, STREAM_NOISE])
        self.penalty_rng = np.random.default_rng([seed, STREAM_PENALTY])
        self.g_masks = MaskSource([seed, STREAM_G_MASKS], world)
        self.d_masks = MaskSource([seed, STREAM_D_MASKS], world)
        self.generator = backend.compile(
            model.generator, [seed, STREAM_G_INIT], self.g_masks, rounding
        )
        self.discriminator = backend.compile(
            model.discriminator,
            [seed, STREAM_D_INIT],
            self.d_masks,
            rounding,
            second_order=self.penalty is not None,
        )
        self.g_optimizer = self._optimizer(
            self.generator, model.generator, experiment.optimizer.generator
        )
        self.d_optimizer = self._optimizer(
            self.discriminator,
            model.discriminator,
            experiment.optimizer.discriminator,
            self._discriminator_trains(),
        )
        # what weight clipping clamps
        self.d_parameters = list(
            backend.state_tensors(
                self.discriminator, model.discriminator, trainable_only=True
            ).values()
        )
        self.information: InformationTerm | None = None
        self.info_optimizer: Any = None
        if train.info_categorical or train.info_continuous:
            self.information = InformationTerm(
                train.info_categorical, train.info_continuous, model.codes
            )
            self.info_optimizer = backend.optimizer(
                self._information_parameters(), experiment.optimizer.info
            )
        self.step_index = 0
        self.rates: tuple[float, float] | None = None  # what the optimizers were last given
        # fp16 scales each network's loss (gx.train.loss_scale); float32 and bf16 need not
        self.loss_scales: dict[str, LossScale] = {}
        if backend.precision == "fp16":
            scaled = ("generator", "discriminator", "information")[: 3 if self.information else 2]
            self.loss_scales = {network: LossScale() for network in scaled}
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

    def _optimizer(
        self, module: Any, spec: Any, settings: OptimizerSettings, layers: set[str] | None = None
    ) -> Any:
        """An optimizer over the module's parameters (of ``layers`` only, when given)."""
        parameters = self.backend.state_tensors(module, spec, trainable_only=True)
        if layers is not None:
            parameters = {
                key: value for key, value in parameters.items() if key.rsplit(".", 1)[0] in layers
            }
        return self.backend.optimizer(parameters, settings)

    def _discriminator_trains(self) -> set[str]:
        """The layers D's own loss reaches: those feeding its first output, and its class head
        where the class term reads it. Heads only the information loss reads are that
        optimizer's: in D's, PyTorch would skip them (no gradient) while Jittor would keep
        zero slots for them, and checkpoints of the two would differ."""
        spec = self.model.discriminator
        read = [spec.output]
        if self.class_term is not None and self.heads.class_logits is not None:
            read.append(spec.outputs[self.heads.class_logits])
        return spec.layers_feeding(read)

    def _information_parameters(self) -> dict[str, Tensor]:
        """G's parameters and those of D's layers that feed the heads the information loss
        reads, keyed 'generator.layer.param' and 'discriminator.layer.param'."""
        backend, model, spec = self.backend, self.model, self.model.discriminator
        heads = [spec.outputs[index] for index in self.heads.codes]
        if self.heads.class_logits is not None:
            heads.append(spec.outputs[self.heads.class_logits])
        if self.heads.packed:
            heads.append(spec.output)
        feeding = spec.layers_feeding(heads)
        g = backend.state_tensors(self.generator, model.generator, trainable_only=True)
        d = backend.state_tensors(self.discriminator, spec, trainable_only=True)
        return {
            **{f"generator.{key}": value for key, value in g.items()},
            **{
                f"discriminator.{key}": value
                for key, value in d.items()
                if key.rsplit(".", 1)[0] in feeding
            },
        }

    # -- inputs -------------------------------------------------------------------------------
    def draw_inputs(self, count: int) -> dict[str, np.ndarray]:
        """Noise (then uniformly random labels, then codes) for ``count`` fakes, from gx's RNG."""
        inputs: dict[str, np.ndarray] = {
            "z": self.noise_rng.standard_normal((count, *self.model.noise_shape), dtype=np.float32)
        }
        if self.model.conditional:
            inputs["label"] = self.noise_rng.integers(0, self.model.classes, count)
        for name in self.model.codes:
            shape = (count, *self.model.code_shape(name))
            inputs[name] = self.noise_rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        return inputs

    def _tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {key: self.backend.tensor(value) for key, value in arrays.items()}

    def _fake_inputs(self, count: int) -> dict[str, Tensor]:
        """This process's ``count`` rows of the global batch's noise, labels and codes."""
        drawn = self.draw_inputs(count * self.world.size)
        return self._tensors({key: self.world.take(value) for key, value in drawn.items()})

    def _judge(self, images: Tensor, labels: Tensor | None) -> Judgement:
        """D's outputs on ``images`` (with their labels, where D reads labels)."""
        inputs = {"image": images}
        if self.model.discriminator_reads_labels:
            inputs["label"] = labels
        return self.heads.judge(images, self.discriminator(inputs))

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
        g_loss = info_loss = None
        if self.order == "g_then_d":
            fake_inputs = self._fake_inputs(count)
            fakes = self.generator(fake_inputs)
            if train_g:
                g_loss = self._generator_update(fakes, fake_inputs, real_images, real_labels)
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
            g_loss = self._generator_update(self.generator(fresh), fresh, real_images, real_labels)
        if train_g and self.information is not None:
            info_loss = self._information_update(count)
        if train_g and self.average is not None:
            self.average.update(self.generator_weights(), self.step_index + 1)
        self.step_index += 1
        return StepResult(d_loss, d_real, d_fake, g_loss, info_loss)

    def _generator_update(
        self,
        fakes: Tensor,
        inputs: dict[str, Tensor],
        real_images: Tensor,
        real_labels: Tensor | None,
    ) -> float:
        backend, labels = self.backend, inputs.get("label")
        real = None
        if self.loss.generator_reads_real:
            with backend.no_grad():
                real = self._judge(real_images, real_labels)
        fake = self._judge(fakes, labels)
        loss = self.loss.generator(backend, fake, real)
        if self.class_term is not None and labels is not None:
            loss = loss + self.class_term.term(backend, fake.class_logits, labels)
        if self.pullaway_weight:
            loss = loss + pull_away(backend, self.pullaway_weight, fake.embedding)
        (mean,) = self._global_means(loss)
        value = self._checked(mean, "generator")
        self._minimize("generator", self.g_optimizer, loss)
        return value

    def _discriminator_update(
        self,
        real_images: Tensor,
        real_labels: Tensor | None,
        fakes: Tensor,
        fake_labels: Tensor | None,
    ) -> tuple[float, float, float]:
        backend, penalty = self.backend, self.penalty
        if penalty is not None and penalty.watches_real:
            real_images = backend.watch(real_images)
        if penalty is not None and penalty.watches_fake:
            fakes = backend.watch(fakes)
        real = self._judge(real_images, real_labels)
        fake = self._judge(fakes, fake_labels)
        loss = self.loss.discriminator(backend, real, fake, self.real_label)
        if self.class_term is not None:
            taught = self.class_term.fake_labels(backend, fake_labels, fakes.shape[0])
            loss = (
                loss
                + self.class_term.term(backend, real.class_logits, real_labels)
                + self.class_term.term(backend, fake.class_logits, taught)
            )
        if self.order == "g_then_d" and self.loss.averaged:
            loss = loss / 2
        if penalty is not None:
            loss = loss + penalty.term(self._penalty_batch(real, fake, real_labels))
        value, d_real, d_fake = self._global_means(
            loss, self.loss.reported(backend, real), self.loss.reported(backend, fake)
        )
        value = self._checked(value, "discriminator")
        self._minimize("discriminator", self.d_optimizer, loss)
        if self.clip_limit is not None:
            backend.clip(self.d_parameters, self.clip_limit)
        self.loss.observe(d_real, d_fake)
        return value, d_real, d_fake

    def _penalty_batch(
        self, real: Judgement, fake: Judgement, real_labels: Tensor | None
    ) -> PenaltyBatch:
        backend, world = self.backend, self.world

        def uniform(shape: tuple[int, ...]) -> Tensor:
            count = real.images.shape[0] * world.size
            drawn = self.penalty_rng.random((count, *shape), dtype=np.float32)
            return backend.tensor(world.take(drawn))

        return PenaltyBatch(
            backend,
            real,
            fake,
            critic=lambda images: self._judge(images, real_labels).score,
            uniform=uniform,
            spread=self._global_spread,
        )

    def _global_spread(self, images: Tensor) -> float:
        """The standard deviation (with n - 1) of every pixel of the global batch: each
        process's float32 means, combined in float64."""
        count = float(np.prod(images.shape)) * self.world.size
        (mean,) = self._global_means(images.mean())
        centered = images - mean
        (spread,) = self._global_means((centered * centered).mean())
        return float(np.sqrt(spread * count / (count - 1)))

    def _information_update(self, count: int) -> float:
        inputs = self._fake_inputs(count)
        fake = self._judge(self.generator(inputs), inputs.get("label"))
        assert self.information is not None
        loss = self.information.loss(self.backend, fake, inputs)
        (mean,) = self._global_means(loss)
        value = self._checked(mean, "information")
        self._minimize("information", self.info_optimizer, loss)
        return value

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
            if self.info_optimizer is not None:
                info_rate = learning_rate(settings.info.lr, experiment, step, epoch, total)
                self.backend.set_learning_rate(self.info_optimizer, info_rate)
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
        """Everything a checkpoint holds; the parts a run uses only with some settings (the
        average, the information optimizer, the penalty stream, a loss's own state) are absent
        or None without them, so other runs' checkpoints keep their contents."""
        backend = self.backend
        rng = {
            "noise": self.noise_rng.bit_generator.state,
            "g_masks": self.g_masks.get_state(),
            "d_masks": self.d_masks.get_state(),
        }
        if self.penalty is not None:
            rng["penalty"] = self.penalty_rng.bit_generator.state
        info = self.info_optimizer
        return {
            "generator": backend.get_weights(self.generator, self.model.generator),
            "discriminator": backend.get_weights(self.discriminator, self.model.discriminator),
            "optimizer_g": backend.get_optimizer_state(self.g_optimizer),
            "optimizer_d": backend.get_optimizer_state(self.d_optimizer),
            "optimizer_info": None if info is None else backend.get_optimizer_state(info),
            "generator_ema": None if self.average is None else dict(self.average.weights),
            "loss_state": self.loss.get_state(),
            "rng": rng,
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
        statistics, optimizer slots and step counts, every RNG stream, the loss's own state
        (BEGAN's k) and the step."""
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
        if self.info_optimizer is not None and checkpoint.optimizer_info is not None:
            backend.load_optimizer_state(self.info_optimizer, checkpoint.optimizer_info)
        self.noise_rng.bit_generator.state = state["rng"]["noise"]
        self.g_masks.set_state(state["rng"]["g_masks"])
        self.d_masks.set_state(state["rng"]["d_masks"])
        if "penalty" in state["rng"]:
            self.penalty_rng.bit_generator.state = state["rng"]["penalty"]
        self.loss.set_state(state.get("loss_state", {}))
        self.step_index = state["step"]
        # a checkpoint of another precision has no scales: fp16 then starts its own
        for name, saved in state.get("loss_scale", {}).items():
            if name in self.loss_scales:
                self.loss_scales[name] = LossScale.from_state(saved)
