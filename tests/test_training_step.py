"""GanTrainer.step against a GAN step written separately, in plain float64 PyTorch.

Resume tests compare the trainer with itself and parity tests compare it with the other
backend, so a wrong target or a wrong step order passes both. Here the reference is written
from the recipe in docs/models.md (D on real with ``real_label`` and on fakes with
0, G on fakes with 1; d_loss summed for D then G, averaged for G then D), on networks small
enough to read: G(z, y) = tanh(W [onehot(y), z] + b) as a 2x2 image, D(x, y) = a linear score
of [x, onehot(y)], through a sigmoid for BCE. Plain SGD makes every weight change a gradient
times the learning rate, so a wrong gradient shows up in the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch

from gx.backends import get_backend
from gx.config import Experiment, experiment_from_dict
from gx.models import build_model
from gx.train.gan import STREAM_NOISE, GanTrainer

pytestmark = pytest.mark.cross_framework

SEED, BATCH, CLASSES, NOISE = 3, 4, 3, 2
Weights = dict[str, torch.Tensor]
STEPS = 3  # with d_steps 2: D alone, then D and G, then D alone
LR_G, LR_D = 0.3, 0.5  # different, so an update applied with the other network's rate shows
MILESTONE_FACTOR = 0.1  # from epoch 1 on
# float32 training against a float64 reference: a few units of float32 rounding per step. Every
# value is a sum of at most 8 unit-scale terms and one exp or log per step: within gamma(8) =
# 4.8e-7 of the terms plus a few ulps of libm, in any order, on any CPU, for each of 3 steps.
TOLERANCE = 2e-6
BACKENDS = ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]


@dataclass(frozen=True)
class Case:
    loss: str
    order: str
    d_steps: int = 1
    real_label: float = 1.0
    epoch: int = 0  # 1: after the learning-rate milestone
    schedule: tuple[tuple[str, Any], ...] = ()  # optimizer.schedule settings
    factors: tuple[float, ...] = (1.0,) * STEPS  # what that schedule does to the rates, by hand
    class_loss: float = 0.0  # AC-GAN: D's output is its score and CLASSES logits


CASES = {
    "bce-d_then_g": Case("bce", "d_then_g"),
    "bce-g_then_d": Case("bce", "g_then_d"),
    "mse-d_then_g": Case("mse", "d_then_g"),
    "mse-g_then_d": Case("mse", "g_then_d"),
    "bce-d_then_g-d_steps2": Case("bce", "d_then_g", d_steps=2),
    "mse-g_then_d-d_steps2": Case("mse", "g_then_d", d_steps=2),
    "bce-d_then_g-real0.9": Case("bce", "d_then_g", real_label=0.9),
    "bce-g_then_d-real0.9": Case("bce", "g_then_d", real_label=0.9),
    "mse-d_then_g-real0.8": Case("mse", "d_then_g", real_label=0.8),
    "bce-g_then_d-milestone": Case("bce", "g_then_d", epoch=1),
    "hinge-d_then_g": Case("hinge", "d_then_g"),
    "hinge-g_then_d-d_steps2": Case("hinge", "g_then_d", d_steps=2),
    "hinge-d_then_g-class_loss": Case("hinge", "d_then_g", class_loss=0.7),
    "mse-g_then_d-class_loss": Case("mse", "g_then_d", class_loss=1.5),
    "bce-d_then_g-warmup": Case(
        "bce", "d_then_g", schedule=(("warmup_steps", 3),), factors=(1 / 3, 2 / 3, 1.0)
    ),
    # warm-up over step 0, then half a cosine from 1 at step 1 to 0.2 at step 3
    "mse-g_then_d-cosine-milestone": Case(
        "mse",
        "g_then_d",
        epoch=1,
        schedule=(
            ("warmup_steps", 1),
            ("decay", "cosine"),
            ("decay_steps", 3),
            ("final_factor", 0.2),
        ),
        factors=(1.0, 1.0, 0.6),
    ),
    "bce-d_then_g-linear": Case(
        "bce",
        "d_then_g",
        schedule=(("decay", "linear"), ("decay_steps", 4)),
        factors=(1.0, 0.75, 0.5),
    ),
    # without decay_steps the factor reaches final_factor as the run ends (after step 2 of 3)
    "hinge-d_then_g-linear-to-the-end": Case(
        "hinge",
        "d_then_g",
        schedule=(("decay", "linear"), ("final_factor", 0.2)),
        factors=(1.0, 1 - 0.8 / 3, 1 - 1.6 / 3),
    ),
}


def tiny_model(loss: str, class_loss: float = 0.0) -> dict[str, Any]:
    generator = {
        "inputs": {"z": [NOISE], "label": {"classes": CLASSES}},
        "layers": [
            {"name": "hot", "kind": "one_hot", "input": "label"},
            {"name": "joined", "kind": "concat", "input": ["hot", "z"]},
            {"name": "fc", "kind": "linear", "out": 4},
            {"name": "squash", "kind": "tanh"},
            {"name": "image", "kind": "reshape", "shape": [1, 2, 2]},
        ],
    }
    discriminator = {
        "inputs": {"image": [1, 2, 2], "label": {"classes": CLASSES}},
        "layers": [
            {"name": "flat", "kind": "flatten", "input": "image"},
            {"name": "hot", "kind": "one_hot", "input": "label"},
            {"name": "joined", "kind": "concat", "input": ["flat", "hot"]},
            {"name": "score", "kind": "linear", "out": 1 + CLASSES if class_loss else 1},
        ],
    }
    if loss == "bce":
        discriminator["layers"].append({"name": "probability", "kind": "sigmoid"})
    return {"name": "custom", "generator": generator, "discriminator": discriminator}


def tiny_experiment(case: Case) -> Experiment:
    return experiment_from_dict(
        {
            "name": "tiny",
            "seed": SEED,
            "model": tiny_model(case.loss, case.class_loss),
            "train": {
                "batch_size": BATCH,
                "order": case.order,
                "loss": case.loss,
                "d_steps": case.d_steps,
                "real_label": case.real_label,
                "class_loss": case.class_loss,
            },
            "optimizer": {
                "generator": {"kind": "sgd", "lr": LR_G},
                "discriminator": {"kind": "sgd", "lr": LR_D},
                "milestones": [{"epoch": 1, "factor": MILESTONE_FACTOR}],
                "schedule": dict(case.schedule),
            },
        },
        "test",
    )


class ReferenceGan:
    """The same GAN, by hand: float64 tensors, explicit formulas, SGD as w -= lr * dL/dw."""

    def __init__(
        self, case: Case, generator: dict[str, np.ndarray], discriminator: dict[str, np.ndarray]
    ) -> None:
        self.case = case
        self.g = {key: torch.tensor(value, dtype=torch.float64) for key, value in generator.items()}
        self.d = {
            key: torch.tensor(value, dtype=torch.float64) for key, value in discriminator.items()
        }
        self.milestone = MILESTONE_FACTOR if case.epoch >= 1 else 1.0
        # gx's contract: noise, then labels, from numpy's generator seeded [seed, STREAM_NOISE]
        self.noise = np.random.default_rng([SEED, STREAM_NOISE])
        self.steps = 0

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.noise.standard_normal((BATCH, NOISE), dtype=np.float32)
        labels = self.noise.integers(0, CLASSES, BATCH)
        return torch.tensor(z, dtype=torch.float64), torch.tensor(labels)

    @staticmethod
    def one_hot(labels: torch.Tensor) -> torch.Tensor:
        return torch.eye(CLASSES, dtype=torch.float64)[labels]

    def generate(self, g: Weights, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([self.one_hot(labels), z], dim=1)
        return torch.tanh(joined @ g["fc.weight"].T + g["fc.bias"]).reshape(-1, 1, 2, 2)

    def discriminate(self, d: Weights, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """D's score (probability for BCE) of each image: column 0 of its output."""
        return self.d_output(d, images, labels)[:, :1]

    def d_output(self, d: Weights, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([images.reshape(len(images), -1), self.one_hot(labels)], dim=1)
        score = joined @ d["score.weight"].T + d["score.bias"]
        return torch.sigmoid(score) if self.case.loss == "bce" else score

    def class_term(self, d: Weights, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """class_loss x the cross-entropy of D's class logits (columns 1..) against labels."""
        if not self.case.class_loss:
            return torch.zeros((), dtype=torch.float64)
        logits = self.d_output(d, images, labels)[:, 1:]
        picked = torch.log_softmax(logits, dim=1)[torch.arange(len(labels)), labels]
        return -self.case.class_loss * picked.mean()

    @property
    def lr_g(self) -> float:
        return LR_G * self.milestone * self.case.factors[self.steps]

    @property
    def lr_d(self) -> float:
        return LR_D * self.milestone * self.case.factors[self.steps]

    def loss(self, prediction: torch.Tensor, target: float) -> torch.Tensor:
        if self.case.loss == "mse":
            return ((prediction - target) ** 2).mean()
        if self.case.loss == "hinge":  # D's side: real images above +1, fakes below -1
            margin = 1 - prediction if target == 1.0 else 1 + prediction
            return torch.clamp(margin, min=0).mean()
        return -(target * torch.log(prediction) + (1 - target) * torch.log(1 - prediction)).mean()

    @staticmethod
    def descend(weights: Weights, lr: float, objective: Callable[[Weights], torch.Tensor]) -> float:
        """One SGD step of ``weights`` (in place) on ``objective``; returns its value before."""
        watched = {key: value.clone().requires_grad_(True) for key, value in weights.items()}
        value = objective(watched)
        gradients = torch.autograd.grad(value, list(watched.values()))
        for key, gradient in zip(watched, gradients):
            weights[key] = weights[key] - lr * gradient
        return float(value.detach())

    def train_generator(self, z: torch.Tensor, labels: torch.Tensor) -> float:
        return self.descend(
            self.g,
            self.lr_g,
            lambda g: (
                self.generator_loss(self.discriminate(self.d, self.generate(g, z, labels), labels))
                + self.class_term(self.d, self.generate(g, z, labels), labels)
            ),
        )

    def generator_loss(self, on_fakes: torch.Tensor) -> torch.Tensor:
        return -on_fakes.mean() if self.case.loss == "hinge" else self.loss(on_fakes, 1.0)

    def step(self, real: torch.Tensor, real_labels: torch.Tensor) -> dict[str, Any]:
        train_g = self.steps % self.case.d_steps == self.case.d_steps - 1
        z, labels = self.draw()
        fakes = self.generate(self.g, z, labels)  # G's weights before this step's G update
        g_loss = None
        if self.case.order == "g_then_d" and train_g:
            g_loss = self.train_generator(z, labels)
        d_real = float(self.discriminate(self.d, real, real_labels).mean())
        d_fake = float(self.discriminate(self.d, fakes, labels).mean())
        average = 0.5 if self.case.order == "g_then_d" else 1.0
        d_loss = self.descend(
            self.d,
            self.lr_d,
            lambda d: (
                average
                * (
                    self.loss(self.discriminate(d, real, real_labels), self.case.real_label)
                    + self.loss(self.discriminate(d, fakes, labels), 0.0)
                    + self.class_term(d, real, real_labels)
                    + self.class_term(d, fakes, labels)
                )
            ),
        )
        if self.case.order == "d_then_g" and train_g:
            g_loss = self.train_generator(*self.draw())
        self.steps += 1
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}


def fixed_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    images = rng.uniform(-1, 1, (BATCH, 1, 2, 2)).astype(np.float32)
    return images, rng.integers(0, CLASSES, BATCH)


def assert_close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=TOLERANCE,
        atol=TOLERANCE,
        err_msg=what,
    )


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("case_id", sorted(CASES))
@pytest.mark.slow
def test_step_matches_a_hand_written_gan_step(backend_name: str, case_id: str) -> None:
    case = CASES[case_id]
    experiment = tiny_experiment(case)
    backend = get_backend(backend_name, "cpu")
    trainer = GanTrainer(
        backend,
        build_model("custom", None, experiment.model.generator, experiment.model.discriminator),
        experiment,
    )
    start = trainer.get_state()
    reference = ReferenceGan(case, start["generator"], start["discriminator"])
    images, labels = fixed_batch()

    for step in range(STEPS):
        trainer.set_rates(step, case.epoch, STEPS)
        result = trainer.step(backend.tensor(images), backend.tensor(labels))
        expected = reference.step(torch.tensor(images, dtype=torch.float64), torch.tensor(labels))
        for key in ("d_loss", "d_real", "d_fake"):
            assert_close(getattr(result, key), expected[key], f"step {step}: {key}")
        assert (result.g_loss is None) == (expected["g_loss"] is None), f"step {step}: G trained?"
        if expected["g_loss"] is not None:
            assert_close(result.g_loss, expected["g_loss"], f"step {step}: g_loss")
        state = trainer.get_state()
        for network, weights in (("generator", reference.g), ("discriminator", reference.d)):
            for key, value in weights.items():
                assert_close(state[network][key], value.numpy(), f"step {step}: {key}")
    # The weights really moved, so matching them says something.
    moved = np.abs(state["generator"]["fc.weight"] - start["generator"]["fc.weight"]).max()
    assert moved > 1e-3
