"""Every loss and term of gx.losses against its paper's formula, written out here in plain
float64 PyTorch, on both backends.

As tests/test_training_step.py does for the reference recipe: networks small enough to read,
plain SGD (so a wrong gradient shows in the weights), three steps of GanTrainer.step against the
same steps by hand, from the same weights, batches, noise, labels, codes and penalty draws (gx's
numpy contract: noise, then labels, then codes from the noise stream; the penalties' draws from
their own stream). G(z[, y][, c]) = tanh(W [onehot(y), z, c] + b) as a 2x2 image. D is a score
network, a hidden tanh layer (so that gradient penalties have second derivatives) with heads on
it, or an autoencoder whose code is its embedding. Each formula below is transcribed from the
paper, not from gx.losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

from gx.backends import get_backend
from gx.config import Experiment, experiment_from_dict, model_for
from gx.train.gan import STREAM_NOISE, STREAM_PENALTY, GanTrainer

pytestmark = pytest.mark.cross_framework

SEED, BATCH, CLASSES, NOISE, CODE, HIDDEN = 3, 4, 3, 2, 2, 3
STEPS = 3
LR_G, LR_D, LR_INFO = 0.3, 0.5, 0.2
# float32 against float64, as in test_training_step: each value a few float32 roundings of
# sums of at most a dozen unit-scale terms per step; the gradient penalties differentiate
# twice through the hidden layer, a few more roundings.
TOLERANCE = 4e-6
BACKENDS = ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]
Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Case:
    loss: str
    order: str = "d_then_g"
    d_steps: int = 1
    g_label: bool = False  # G takes a label (a class, or InfoGAN's categorical code)
    d_label: bool = False  # D reads the label too
    code: bool = False  # G takes a continuous code, uniform in [-1, 1]
    autoencoder: bool = False  # D reconstructs the image (began, ebgan)
    train: dict[str, Any] = field(default_factory=dict)  # further train settings

    @property
    def sigmoid(self) -> bool:
        return self.loss in ("bce", "boundary_seeking")

    @property
    def heads(self) -> list[str]:
        """D's heads after its score, in gx's order."""
        train = self.train
        heads = []
        if train.get("class_loss") or train.get("info_categorical"):
            heads.append("class_logits")
        if train.get("info_continuous"):
            heads.append("code_estimate")
        if self.autoencoder and train.get("pullaway_weight"):
            heads.append("enc")
        return heads

    @property
    def head_width(self) -> int:
        return CLASSES + bool(self.train.get("fake_class"))


CASES = {
    "wasserstein-d_steps2-clip": Case(
        "wasserstein", d_steps=2, g_label=True, d_label=True, train={"clip_d": 0.3}
    ),
    # a weight below the paper's 10 keeps the values at unit scale under these large steps
    "wasserstein-wgan_gp": Case(
        "wasserstein", train={"gradient_penalty": "wgan_gp", "penalty_weight": 0.5}
    ),
    "wasserstein-wgan_div": Case(
        "wasserstein", order="g_then_d", train={"gradient_penalty": "wgan_div"}
    ),
    "bce-dragan": Case(
        "bce", order="g_then_d", g_label=True, d_label=True, train={"gradient_penalty": "dragan"}
    ),
    "hinge-r1-weight": Case("hinge", train={"gradient_penalty": "r1", "penalty_weight": 3.0}),
    "relativistic": Case("relativistic", order="g_then_d"),
    "relativistic_average": Case("relativistic_average", g_label=True, d_label=True),
    "relativistic_average-g_then_d": Case("relativistic_average", order="g_then_d"),
    "softmax": Case("softmax", order="g_then_d"),
    "boundary_seeking": Case("boundary_seeking", order="g_then_d"),
    "began": Case("began", order="g_then_d", autoencoder=True, train={"began_lambda_k": 0.5}),
    "ebgan-pullaway": Case(
        "ebgan",
        order="g_then_d",
        autoencoder=True,
        train={"ebgan_margin": 0.6, "pullaway_weight": 0.1},
    ),
    "acgan-bce-two-outputs": Case("bce", order="g_then_d", g_label=True, train={"class_loss": 1.0}),
    "sgan-unconditional": Case(
        "bce", order="g_then_d", train={"class_loss": 1.0, "fake_class": True}
    ),
    "sgan-conditional": Case("mse", g_label=True, train={"class_loss": 0.5, "fake_class": True}),
    "infogan": Case(
        "mse",
        order="g_then_d",
        g_label=True,
        code=True,
        train={"info_categorical": 1.0, "info_continuous": 0.1},
    ),
}


def linear(name: str, out: int, source: str | None = None) -> dict[str, Any]:
    layer = {"name": name, "kind": "linear", "out": out}
    return layer if source is None else {**layer, "input": source}


def model_settings(case: Case) -> dict[str, Any]:
    g_inputs: dict[str, Any] = {"z": [NOISE]}
    g_parts = ["z"]
    g_layers: list[dict[str, Any]] = []
    if case.g_label:
        g_inputs["label"] = {"classes": CLASSES}
        g_layers.append({"name": "hot", "kind": "one_hot", "input": "label"})
        g_parts.insert(0, "hot")
    if case.code:
        g_inputs["code"] = {"uniform": [CODE]}
        g_parts.append("code")
    if len(g_parts) > 1:
        g_layers.append({"name": "joined", "kind": "concat", "input": g_parts})
    g_layers += [
        linear("fc", 4, None if len(g_parts) > 1 else "z"),
        {"name": "squash", "kind": "tanh"},
        {"name": "image", "kind": "reshape", "shape": [1, 2, 2]},
    ]
    d_inputs: dict[str, Any] = {"image": [1, 2, 2]}
    d_layers: list[dict[str, Any]] = [{"name": "flat", "kind": "flatten", "input": "image"}]
    features = "flat"
    if case.d_label:
        d_inputs["label"] = {"classes": CLASSES}
        d_layers += [
            {"name": "hot", "kind": "one_hot", "input": "label"},
            {"name": "joined", "kind": "concat", "input": ["flat", "hot"]},
        ]
        features = "joined"
    if case.autoencoder:
        d_layers += [
            linear("enc", HIDDEN, features),
            linear("dec", 4),
            {"name": "squash", "kind": "tanh"},
            {"name": "recon", "kind": "reshape", "shape": [1, 2, 2]},
        ]
        outputs = ["recon"]
    else:
        d_layers += [linear("hidden", HIDDEN, features), {"name": "act", "kind": "tanh"}]
        d_layers.append(linear("score", 1, "act"))
        outputs = ["score"]
        if case.sigmoid:
            d_layers.append({"name": "probability", "kind": "sigmoid"})
            outputs = ["probability"]
        if "class_logits" in case.heads:
            d_layers.append(linear("class_logits", case.head_width, "act"))
        if "code_estimate" in case.heads:
            d_layers.append(linear("code_estimate", CODE, "act"))
    outputs += case.heads
    return {
        "name": "custom",
        "generator": {"inputs": g_inputs, "layers": g_layers},
        "discriminator": {"inputs": d_inputs, "layers": d_layers, "output": outputs},
    }


def experiment(case: Case) -> Experiment:
    sgd = {"kind": "sgd"}
    return experiment_from_dict(
        {
            "name": "losses",
            "seed": SEED,
            "model": model_settings(case),
            "data": {"image_size": None},  # no images are read: the test hands its batches over
            "train": {
                "batch_size": BATCH,
                "order": case.order,
                "loss": case.loss,
                "d_steps": case.d_steps,
                **case.train,
            },
            "optimizer": {
                "generator": {**sgd, "lr": LR_G},
                "discriminator": {**sgd, "lr": LR_D},
                "info": {**sgd, "lr": LR_INFO},
            },
        },
        "test",
    )


class ReferenceGan:
    """The same GAN by hand: float64, explicit formulas, SGD as w -= lr * dL/dw."""

    def __init__(self, case: Case, generator: dict, discriminator: dict) -> None:
        self.case, self.train = case, case.train
        self.g = {key: torch.tensor(value, dtype=torch.float64) for key, value in generator.items()}
        self.d = {
            key: torch.tensor(value, dtype=torch.float64) for key, value in discriminator.items()
        }
        self.noise = np.random.default_rng([SEED, STREAM_NOISE])
        self.penalty_draws = np.random.default_rng([SEED, STREAM_PENALTY])
        self.k = 0.0  # BEGAN's equilibrium controller
        self.steps = 0

    # -- the networks --------------------------------------------------------------------------
    def draw(self) -> dict[str, torch.Tensor]:
        drawn = {"z": self.noise.standard_normal((BATCH, NOISE), dtype=np.float32)}
        if self.case.g_label:
            drawn["label"] = self.noise.integers(0, CLASSES, BATCH)
        if self.case.code:
            drawn["code"] = self.noise.uniform(-1, 1, (BATCH, CODE)).astype(np.float32)
        return {
            key: torch.tensor(value, dtype=torch.float64 if key != "label" else torch.int64)
            for key, value in drawn.items()
        }

    @staticmethod
    def one_hot(labels: torch.Tensor) -> torch.Tensor:
        return torch.eye(CLASSES, dtype=torch.float64)[labels]

    def generate(self, g: Weights, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [inputs["z"]]
        if "label" in inputs:
            parts.insert(0, self.one_hot(inputs["label"]))
        if "code" in inputs:
            parts.append(inputs["code"])
        joined = torch.cat(parts, dim=1)
        return torch.tanh(joined @ g["fc.weight"].T + g["fc.bias"]).reshape(-1, 1, 2, 2)

    def discriminate(
        self, d: Weights, images: torch.Tensor, labels: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """D's outputs by name: 'first' (score, probability or reconstruction) and its heads."""
        x = images.reshape(len(images), -1)
        if self.case.d_label:
            x = torch.cat([x, self.one_hot(labels)], dim=1)
        if self.case.autoencoder:
            code = x @ d["enc.weight"].T + d["enc.bias"]
            decoded = torch.tanh(code @ d["dec.weight"].T + d["dec.bias"])
            return {"first": decoded.reshape(-1, 1, 2, 2), "embedding": code}
        hidden = torch.tanh(x @ d["hidden.weight"].T + d["hidden.bias"])
        score = hidden @ d["score.weight"].T + d["score.bias"]
        outputs = {"first": torch.sigmoid(score) if self.case.sigmoid else score}
        for head in ("class_logits", "code_estimate"):
            if head in self.case.heads:
                outputs[head] = hidden @ d[f"{head}.weight"].T + d[f"{head}.bias"]
        return outputs

    # -- the losses, from the papers -----------------------------------------------------------
    def energy_l1(self, recon: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """BEGAN: L(v) = E|v - D(v)|."""
        return (images - recon).abs().mean()

    def energies_l2(self, recon: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """EBGAN: D(v) = mean over the pixels of (Dec(Enc(v)) - v)^2, per image."""
        return ((recon - images) ** 2).reshape(len(images), -1).mean(dim=1)

    def d_adversarial(self, real: dict, fake: dict, real_images, fakes) -> torch.Tensor:
        r, f = real["first"], fake["first"]
        loss = self.case.loss
        if loss == "wasserstein":
            return -r.mean() + f.mean()
        if loss in ("bce", "boundary_seeking"):
            return -torch.log(r).mean() - torch.log(1 - f).mean()
        if loss == "mse":
            return ((r - 1) ** 2).mean() + (f**2).mean()
        if loss == "hinge":
            return torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()
        if loss == "relativistic":
            return -torch.log(torch.sigmoid(r - f)).mean()
        if loss == "relativistic_average":
            return (
                -torch.log(torch.sigmoid(r - f.mean())).mean()
                - torch.log(1 - torch.sigmoid(f - r.mean())).mean()
            )
        if loss == "softmax":  # B+ the real batch, B = B+ and the fakes
            energies = torch.cat([r, f]).reshape(-1)
            return r.mean() + torch.log(torch.exp(-energies).sum())
        if loss == "began":
            return self.energy_l1(r, real_images) - self.k * self.energy_l1(f, fakes)
        if loss == "ebgan":
            margin = self.train["ebgan_margin"]
            return (
                self.energies_l2(r, real_images).mean()
                + torch.clamp(margin - self.energies_l2(f, fakes), min=0).mean()
            )
        raise AssertionError(loss)

    def g_adversarial(self, fake: dict, real: dict | None, fakes) -> torch.Tensor:
        f, loss = fake["first"], self.case.loss
        if loss in ("wasserstein", "hinge"):
            return -f.mean()
        if loss == "bce":
            return -torch.log(f).mean()
        if loss == "mse":
            return ((f - 1) ** 2).mean()
        if loss == "boundary_seeking":
            return 0.5 * ((torch.log(f) - torch.log(1 - f)) ** 2).mean()
        if loss == "relativistic":
            return -torch.log(torch.sigmoid(f - real["first"])).mean()
        if loss == "relativistic_average":
            r = real["first"]
            return (
                -torch.log(torch.sigmoid(f - r.mean())).mean()
                - torch.log(1 - torch.sigmoid(r - f.mean())).mean()
            )
        if loss == "softmax":
            energies = torch.cat([real["first"], f]).reshape(-1)
            return energies.mean() + torch.log(torch.exp(-energies).sum())
        if loss == "began":
            return self.energy_l1(f, fakes)
        if loss == "ebgan":
            return self.energies_l2(f, fakes).mean()
        raise AssertionError(loss)

    def reported(self, judged: dict, images: torch.Tensor) -> float:
        if self.case.loss == "began":
            return float(self.energy_l1(judged["first"], images))
        if self.case.loss == "ebgan":
            return float(self.energies_l2(judged["first"], images).mean())
        return float(judged["first"].mean())

    def pull_away(self, embedding: torch.Tensor) -> torch.Tensor:
        """f_PT(S) = 1/(N(N-1)) sum over i != j of the squared cosine of S_i and S_j."""
        n = len(embedding)
        total = embedding.new_zeros(())
        for i in range(n):
            for j in range(n):
                if i != j:
                    cosine = (
                        embedding[i] @ embedding[j] / (embedding[i].norm() * embedding[j].norm())
                    )
                    total = total + cosine**2
        return total / (n * (n - 1))

    def cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -torch.log_softmax(logits, dim=1)[torch.arange(len(labels)), labels].mean()

    def penalty(self, d: Weights, real_images, real_labels, fakes) -> torch.Tensor:
        kind = self.train.get("gradient_penalty", "none")
        if kind == "none":
            return torch.zeros((), dtype=torch.float64)
        weight = self.train.get("penalty_weight") or {"wgan_div": 2.0}.get(kind, 10.0)

        def gradient(points: torch.Tensor) -> torch.Tensor:
            points = points.detach().requires_grad_(True)
            score = self.discriminate(d, points, real_labels)["first"]
            (grad,) = torch.autograd.grad(score.sum(), [points], create_graph=True)
            return grad.reshape(len(points), -1)

        if kind == "wgan_gp":
            e = self.uniform((BATCH, 1, 1, 1))
            norms = gradient(e * real_images + (1 - e) * fakes).norm(dim=1)
            return weight * ((norms - 1) ** 2).mean()
        if kind == "dragan":
            a, u = self.uniform((BATCH, 1, 2, 2)), self.uniform((BATCH, 1, 2, 2))
            spread = real_images.std()  # over every pixel of the batch, with n - 1
            norms = gradient(real_images + a * 0.5 * spread * u).norm(dim=1)
            return weight * ((norms - 1) ** 2).mean()
        if kind == "wgan_div":
            p = 6.0
            return (
                weight
                / 2
                * (
                    (gradient(real_images).norm(dim=1) ** p).mean()
                    + (gradient(fakes).norm(dim=1) ** p).mean()
                )
            )
        if kind == "r1":
            return weight / 2 * (gradient(real_images).norm(dim=1) ** 2).mean()
        raise AssertionError(kind)

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.tensor(self.penalty_draws.random(shape, dtype=np.float32), dtype=torch.float64)

    # -- the step --------------------------------------------------------------------------------
    @staticmethod
    def descend(weights: Weights, lr: float, objective: Callable[[Weights], torch.Tensor]) -> float:
        watched = {key: value.clone().requires_grad_(True) for key, value in weights.items()}
        value = objective(watched)
        gradients = torch.autograd.grad(value, list(watched.values()), allow_unused=True)
        for key, gradient in zip(watched, gradients):
            if gradient is not None:
                weights[key] = weights[key] - lr * gradient
        return float(value.detach())

    def generator_loss(self, g: Weights, inputs, real_images, real_labels) -> torch.Tensor:
        real = None
        if self.case.loss in ("relativistic", "relativistic_average", "softmax"):
            real = {
                k: v.detach()
                for k, v in self.discriminate(self.d, real_images, real_labels).items()
            }
        fakes = self.generate(g, inputs)
        fake = self.discriminate(self.d, fakes, inputs.get("label"))
        loss = self.g_adversarial(fake, real, fakes)
        if self.train.get("class_loss") and "label" in inputs:
            loss = loss + self.train["class_loss"] * self.cross_entropy(
                fake["class_logits"], inputs["label"]
            )
        if self.train.get("pullaway_weight"):
            loss = loss + self.train["pullaway_weight"] * self.pull_away(fake["embedding"])
        return loss

    def discriminator_loss(self, d: Weights, real_images, real_labels, fakes, fake_labels):
        real = self.discriminate(d, real_images, real_labels)
        fake = self.discriminate(d, fakes, fake_labels)
        loss = self.d_adversarial(real, fake, real_images, fakes)
        if self.train.get("class_loss"):
            taught = fake_labels
            if self.train.get("fake_class"):
                taught = torch.full((BATCH,), CLASSES, dtype=torch.int64)
            loss = loss + self.train["class_loss"] * (
                self.cross_entropy(real["class_logits"], real_labels)
                + self.cross_entropy(fake["class_logits"], taught)
            )
        averaged = self.case.loss in (
            "bce",
            "mse",
            "hinge",
            "boundary_seeking",
            "relativistic_average",
        )
        if self.case.order == "g_then_d" and averaged:
            loss = loss / 2
        return loss + self.penalty(d, real_images, real_labels, fakes)

    def information_loss(self, g: Weights, d: Weights, inputs) -> torch.Tensor:
        fake = self.discriminate(d, self.generate(g, inputs), inputs.get("label"))
        return (
            self.train["info_categorical"]
            * self.cross_entropy(fake["class_logits"], inputs["label"])
            + self.train["info_continuous"] * ((fake["code_estimate"] - inputs["code"]) ** 2).mean()
        )

    def step(self, real_images: torch.Tensor, real_labels: torch.Tensor) -> dict[str, Any]:
        case = self.case
        train_g = self.steps % case.d_steps == case.d_steps - 1
        inputs = self.draw()
        fakes = self.generate(self.g, inputs).detach()  # G before this step's update
        g_loss = None
        if case.order == "g_then_d" and train_g:
            g_loss = self.descend(
                self.g, LR_G, lambda g: self.generator_loss(g, inputs, real_images, real_labels)
            )
        real_judged = self.discriminate(self.d, real_images, real_labels)
        fake_judged = self.discriminate(self.d, fakes, inputs.get("label"))
        d_real = self.reported(real_judged, real_images)
        d_fake = self.reported(fake_judged, fakes)
        d_loss = self.descend(
            self.d,
            LR_D,
            lambda d: self.discriminator_loss(
                d, real_images, real_labels, fakes, inputs.get("label")
            ),
        )
        if "clip_d" in self.train:
            limit = self.train["clip_d"]
            self.d = {key: value.clamp(-limit, limit) for key, value in self.d.items()}
        if case.loss == "began":  # k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)
            gamma, gain = self.train.get("began_gamma", 0.75), self.train["began_lambda_k"]
            self.k = min(max(self.k + gain * (gamma * d_real - d_fake), 0.0), 1.0)
        if case.order == "d_then_g" and train_g:
            fresh = self.draw()
            g_loss = self.descend(
                self.g, LR_G, lambda g: self.generator_loss(g, fresh, real_images, real_labels)
            )
        info_loss = None
        if train_g and self.train.get("info_categorical"):
            fresh = self.draw()
            both = {
                **{f"g.{k}": v for k, v in self.g.items()},
                **{f"d.{k}": v for k, v in self.d.items()},
            }

            def information(weights: Weights) -> torch.Tensor:
                g = {k[2:]: v for k, v in weights.items() if k.startswith("g.")}
                d = {k[2:]: v for k, v in weights.items() if k.startswith("d.")}
                return self.information_loss(g, d, fresh)

            info_loss = self.descend(both, LR_INFO, information)
            self.g = {k[2:]: v for k, v in both.items() if k.startswith("g.")}
            self.d = {k[2:]: v for k, v in both.items() if k.startswith("d.")}
        self.steps += 1
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": d_real,
            "d_fake": d_fake,
            "info_loss": info_loss,
        }


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
def test_each_loss_and_term_matches_its_formula(backend_name: str, case_id: str) -> None:
    case = CASES[case_id]
    ran = experiment(case)
    backend = get_backend(backend_name, "cpu")
    trainer = GanTrainer(backend, model_for(ran), ran)
    start = trainer.get_state()
    reference = ReferenceGan(case, start["generator"], start["discriminator"])
    images, labels = fixed_batch()
    reads_labels = trainer.label_classes > 0
    assert reads_labels == (case.g_label or bool(case.train.get("class_loss")))

    for step in range(STEPS):
        result = trainer.step(
            backend.tensor(images), backend.tensor(labels) if reads_labels else None
        )
        expected = reference.step(torch.tensor(images, dtype=torch.float64), torch.tensor(labels))
        for key in ("d_loss", "d_real", "d_fake", "g_loss", "info_loss"):
            value = getattr(result, key)
            assert (value is None) == (expected[key] is None), f"step {step}: {key}"
            if value is not None:
                assert_close(value, expected[key], f"step {step}: {key}")
        state = trainer.get_state()
        for network, weights in (("generator", reference.g), ("discriminator", reference.d)):
            for key, value in weights.items():
                assert_close(state[network][key], value.numpy(), f"step {step}: {key}")
        if case.loss == "began":
            assert state["loss_state"] == {"k": pytest.approx(reference.k, abs=TOLERANCE)}
    # the weights moved, far beyond the tolerance, so matching them says something; and
    # BEGAN's k did too
    moved = np.abs(state["generator"]["fc.weight"] - start["generator"]["fc.weight"]).max()
    assert moved > 1e-4
    if case.loss == "began":
        assert reference.k > 1e-3
    if "clip_d" in case.train:
        assert max(float(np.abs(value).max()) for value in state["discriminator"].values()) == (
            pytest.approx(case.train["clip_d"])
        )
