"""gx import of a discriminator that returns a tuple: its score and a class head, as AC-GAN and
semi-supervised GAN code writes it. The spec gets two outputs in the same order, and the
compiled network gives both, on both backends, as the module does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gx.backends import get_backend
from gx.importer import import_network
from gx.importer.network import example_inputs
from gx.parity.agreement import agrees, relative_norm

pytestmark = pytest.mark.cross_framework


class ScoreAndClasses(nn.Module):
    """The shape of AC-GAN's discriminator (PyTorch-GAN's acgan.py), small."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.BatchNorm2d(8, 0.8)
        )
        self.adv_layer = nn.Sequential(nn.Linear(8 * 4 * 4, 1), nn.Sigmoid())
        self.aux_layer = nn.Linear(8 * 4 * 4, 10)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.features(img)
        out = out.view(out.shape[0], -1)
        return self.adv_layer(out), self.aux_layer(out)


def test_a_tuple_return_becomes_two_outputs_in_order():
    torch.manual_seed(0)
    network = import_network(ScoreAndClasses(), {"image": "1x8x8"})
    spec = network.spec
    assert len(spec.outputs) == 2
    assert [value.shape for value in spec.output_values] == [(1,), (10,)]
    kinds = {info.name: info.kind for info in spec.infos}
    assert kinds[spec.outputs[0]] == "sigmoid" and kinds[spec.outputs[1]] == "linear"


@pytest.mark.parametrize(
    "backend_name", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.slow
def test_both_outputs_compute_what_the_module_computes(backend_name, training):
    torch.manual_seed(0)
    module = ScoreAndClasses()
    network = import_network(module, {"image": "1x8x8"})
    weights = network.weights(module.state_dict())
    arguments, inputs = example_inputs(network.inputs, 6, seed=3)
    module.train(training)
    with torch.no_grad():
        expected = [value.numpy() for value in module(*arguments)]

    def compiled_outputs(name: str, dtype: str = "float32") -> list[np.ndarray]:
        backend = get_backend(name, "cpu", dtype)
        compiled = backend.compile(network.spec, 0)
        backend.load_weights(compiled, network.spec, weights)
        backend.set_training(compiled, training)
        with backend.no_grad():
            outputs = compiled({key: backend.tensor(value) for key, value in inputs.items()})
        return [backend.numpy(value) for value in outputs]

    got = compiled_outputs(backend_name)
    exact = compiled_outputs("torch", "float64")
    assert len(got) == len(expected) == 2
    for mine, theirs, truth in zip(got, expected, exact):
        assert mine.shape == theirs.shape
        difference = relative_norm(mine, theirs)
        if backend_name == "torch":
            assert difference <= 1e-6  # PyTorch's own kernels on the same numbers
        else:
            assert agrees(difference, relative_norm(theirs, truth))
