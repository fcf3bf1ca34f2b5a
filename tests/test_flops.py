"""gx's FLOP count of a training step, and of each layer kind, against PyTorch's own counter.

The reference is PyTorch's FlopCounterMode around a step written out here with torch.autograd:
each update differentiates only the parameters it trains, so the counter sees the work the step
needs, which is what gx.spec.flops counts from the spec alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gx.backends import get_backend
from gx.config import experiment_from_dict, model_for
from gx.layers import LAYER_KINDS, ParityCase
from gx.models import build_model
from gx.spec import MaskSource, ModelSpec, example_inputs
from gx.spec.flops import step_flops
from gx.train.gan import GanTrainer

BATCH = 4
ORDERS = {"cdcgan": "d_then_g", "dcgan": "d_then_g", "cgan": "g_then_d", "gan": "g_then_d"}


def counted_step(name: str, order: str) -> int:
    """FLOPs PyTorch counts in one step of ``order`` with G and D both trained."""
    model = build_model(name)
    backend = get_backend("torch", "cpu")
    generator = backend.compile(model.generator, 1)
    discriminator = backend.compile(model.discriminator, 2)
    g_params = list(backend.state_tensors(generator, model.generator, trainable_only=True).values())
    d_params = list(
        backend.state_tensors(discriminator, model.discriminator, trainable_only=True).values()
    )
    rng = np.random.default_rng(0)

    def inputs(shape_key: str, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        values = {shape_key: torch.from_numpy(rng.standard_normal((BATCH, *shape), np.float32))}
        if model.conditional:
            values["label"] = torch.from_numpy(rng.integers(0, model.classes, BATCH))
        return values

    def d_loss(fakes: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        real = inputs("image", model.image_shape)
        return discriminator(real).mean() + discriminator({**labels, "image": fakes}).mean()

    with FlopCounterMode(display=False) as counter:
        noise = inputs("z", model.noise_shape)
        if order == "d_then_g":
            with torch.no_grad():
                fakes = generator(noise)
            torch.autograd.grad(d_loss(fakes, noise), d_params)
            fresh = inputs("z", model.noise_shape)
            score = discriminator({**fresh, "image": generator(fresh)}).mean()
            torch.autograd.grad(score, g_params)
        else:
            fakes = generator(noise)
            torch.autograd.grad(discriminator({**noise, "image": fakes}).mean(), g_params)
            torch.autograd.grad(d_loss(fakes.detach(), noise), d_params)
    return counter.get_total_flops()


@pytest.mark.parametrize("name", list(ORDERS))
@pytest.mark.slow
def test_step_flops_equal_pytorchs_count(name: str) -> None:
    model = build_model(name)
    counted = step_flops(model.generator, model.discriminator, BATCH, ORDERS[name], 1)
    assert counted.per_step == counted_step(name, ORDERS[name])


@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
@pytest.mark.slow
def test_gx_torch_step_does_exactly_the_counted_work(name: str) -> None:
    """GanTrainer.step on torch, under PyTorch's counter: no gradient that nothing uses."""
    experiment = experiment_from_dict(
        {
            "name": name,
            "model": {"name": name},
            "data": {"image_size": None},
            "train": {"order": ORDERS[name]},
        },
        "test",
    )
    backend = get_backend("torch", "cpu")
    trainer = GanTrainer(backend, model_for(experiment), experiment)
    model = trainer.model
    rng = np.random.default_rng(0)
    images = backend.tensor(rng.uniform(-1, 1, (BATCH, *model.image_shape)).astype(np.float32))
    labels = backend.tensor(rng.integers(0, model.classes, BATCH))
    with FlopCounterMode(display=False) as counter:
        trainer.step(images, labels)
    expected = step_flops(model.generator, model.discriminator, BATCH, ORDERS[name], 1)
    assert counter.get_total_flops() == expected.per_step


CASES = [
    (kind, name, case)
    for kind, definition in LAYER_KINDS.items()
    for name, case in definition.parity_cases.items()
]


@pytest.mark.parametrize("kind,name,case", CASES, ids=[name for _, name, _ in CASES])
def test_each_kinds_forward_flops_equal_pytorchs_count(
    kind: str, name: str, case: ParityCase
) -> None:
    """Every layer kind's own count (Layer.flops) against PyTorch's counter around the forward
    pass of its parity cases on gx's PyTorch backend: the products it counts, and none where it
    counts none."""
    spec = ModelSpec.from_dict(case.spec_dict(kind))
    backend = get_backend("torch", "cpu")
    module = backend.compile(spec, 0, MaskSource(0))
    inputs = {key: backend.tensor(value) for key, value in example_inputs(spec, BATCH, 0).items()}
    with FlopCounterMode(display=False) as counter:
        module(inputs)
    (info,) = spec.infos
    assert counter.get_total_flops() == BATCH * info.layer.flops(info)
