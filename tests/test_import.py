"""gx import: hand-written PyTorch networks become specs that compute the same, on both backends.

Each network is imported from its module with random weights (and random batch-norm running
statistics), compiled in each backend with the module's weights, and compared with the module
itself: outputs, gradients of sum(output * r) for a fixed random r with respect to every
parameter and float input, and in training mode the updated running statistics.

Differences are relative, ||a - b|| / ||b||. gx's PyTorch backend runs PyTorch's own kernels on
the same numbers, so it agrees to 1e-6 (measured: exactly, on every network here). Jittor's
kernels round differently, by an amount that depends on the network's depth and on the kernels
the CPU picks (cdcgan's discriminator: 8.6e-6 on an AMD Zen 3, 1.2e-5 on an Intel Xeon with
AVX-512), so each Jittor value is judged against its own rounding floor, measured in the same
test: how far the module's float32 result is from gx's PyTorch backend in float64
(gx.parity.agreement).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from import_networks import (
    HANDWRITTEN,
    AcganGenerator,
    EmbeddingDiscriminator,
    ExampleDiscriminator,
    ExampleGenerator,
    FlatCganDiscriminator,
    GatedClassifier,
    LabelMapDiscriminator,
    NormalizedGenerator,
    OneHotGenerator,
    OtherSpellings,
    PoolingDiscriminator,
    ShapeBranchGenerator,
    SnganDiscriminator,
    TinyDiscriminator,
    TinyGenerator,
    VariadicGenerator,
)
from safetensors.numpy import load_file
from support import gx
from torch.nn.utils.spectral_norm import SpectralNorm

import gx as gx_api
from gx.backends import get_backend
from gx.importer import import_network
from gx.importer.network import ImportedNetwork, example_inputs
from gx.importer.spectral import SpectralNormKeys
from gx.parity import SeedRun
from gx.parity.agreement import agrees, allowed_difference, relative_norm
from gx.parity.check import ParityCheck, SeedCrossings
from gx.spec import MaskSource, ModelSpec
from gx.testing import assert_parity
from gx.tools.generate import load_generator
from gx.tools.summary import layer_rows

pytestmark = pytest.mark.cross_framework

TESTS = Path(__file__).resolve().parent
NETWORKS_FILE = TESTS / "import_networks.py"
# ||a - b|| / ||b|| over a tensor (over a layer's parameters together for their gradients: a
# bias feeding training-mode batch norm has a gradient that is zero up to rounding)
TORCH_TOLERANCE = 1e-6
BATCH = 8

NETWORKS = {
    "dcgan_generator": (HANDWRITTEN.DcganGenerator, {"z": "100x1x1"}),
    "dcgan_discriminator": (HANDWRITTEN.DcganDiscriminator, {"image": "1x28x28"}),
    "cdcgan_generator": (HANDWRITTEN.CdcganGenerator, {"z": "100x1x1", "label": "onehot:10x1x1"}),
    "cdcgan_discriminator": (
        HANDWRITTEN.CdcganDiscriminator,
        {"image": "1x28x28", "label": "onehot:10x28x28"},
    ),
    "cgan_generator": (HANDWRITTEN.CganGenerator, {"z": "100", "label": "class:10"}),
    "cgan_discriminator": (
        HANDWRITTEN.CganDiscriminator,
        {"image": "1x32x32", "label": "class:10"},
    ),
    "gan_generator": (HANDWRITTEN.GanGenerator, {"z": "100"}),
    "gan_discriminator": (HANDWRITTEN.GanDiscriminator, {"image": "1x28x28"}),
    "one_hot_generator": (OneHotGenerator, {"z": "16", "label": "class:10"}),
    "label_map_discriminator": (LabelMapDiscriminator, {"image": "1x8x8", "label": "class:10"}),
    "embedding_discriminator": (EmbeddingDiscriminator, {"image": "1x8x8", "label": "class:10"}),
    "acgan_generator": (AcganGenerator, {"noise": "16", "label": "class:10"}),
    "pooling_discriminator": (PoolingDiscriminator, {"image": "1x8x8"}),
    "gated_classifier": (GatedClassifier, {"image": "1x8x8"}),
    "other_spellings": (OtherSpellings, {"image": "1x8x8"}),
    # habits of public GAN code: the DCGAN example's branch on the GPU count and its
    # view(-1, 1).squeeze(1), branches on shapes, spectral norm, unused *args and **kwargs,
    # flat images
    "example_generator": (ExampleGenerator, {"z": "16x1x1"}),
    "example_discriminator": (ExampleDiscriminator, {"image": "1x16x16"}),
    "shape_branch_generator": (ShapeBranchGenerator, {"z": "16"}),
    "sngan_discriminator": (SnganDiscriminator, {"image": "3x8x8"}),
    "variadic_generator": (VariadicGenerator, {"z": "16"}),
    "flat_cgan_discriminator": (FlatCganDiscriminator, {"image": "64", "label": "class:10"}),
    "normalized_generator": (NormalizedGenerator, {"z": "16"}),
}


def randomized(cls: type) -> torch.nn.Module:
    """The network with random weights and running statistics, so that every one matters; its
    spectral norms as a training step leaves them (trained_spectral_norms)."""
    torch.manual_seed(0)
    module = cls()
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith(("weight_u", "weight_v")):
                continue
            elif tensor.is_floating_point():
                tensor.normal_(0.0, 0.1 if name.endswith(("weight", "weight_orig")) else 0.5)
    trained_spectral_norms(module)
    return module


def spectral_norm_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [
        layer
        for layer in module.modules()
        if any(isinstance(hook, SpectralNorm) for hook in layer._forward_pre_hooks.values())
    ]


def trained_spectral_norms(module: torch.nn.Module) -> None:
    """Each spectral norm's u and v as a training step leaves them: one power iteration from
    its u (u = normalize(W v)), then W moved by the optimizer, so that v is not what gx would
    derive from u and the import must scale u (gx.importer.spectral)."""
    with torch.no_grad():
        for layer in spectral_norm_layers(module):
            matrix = layer.weight_orig.reshape(layer.weight_u.shape[0], -1)
            layer.weight_v.copy_(F.normalize(matrix.t() @ layer.weight_u, dim=0))
            layer.weight_u.copy_(F.normalize(matrix @ layer.weight_v, dim=0))
            layer.weight_orig.add_(0.02 * torch.randn_like(layer.weight_orig))


class MaskedDropout:
    """F.dropout (or F.dropout2d, ``channels``) with gx's masks: the same seed, drawn in the same
    layer order, so that the module's training-mode dropout is comparable with gx's."""

    def __init__(self, masks: MaskSource, channels: bool = False) -> None:
        self.masks, self.channels = masks, channels

    def __call__(self, x, p=0.5, training=True, inplace=False):
        if not training or p == 0:
            return x
        mask = self.masks.channel_mask if self.channels else self.masks.mask
        return x * torch.from_numpy(mask(x.shape, p))


def run_original(module, network: ImportedNetwork, training: bool, probe, monkeypatch):
    """Output, gradients (keyed as gx keys them) and state after one forward of the module."""
    arguments, _ = example_inputs(network.inputs, BATCH, seed=1)
    floats = [i for i, declared in enumerate(network.inputs) if declared.kind == "tensor"]
    for index in floats:
        arguments[index].requires_grad_(True)
    module.train(training)
    masks = MaskSource(5)
    with monkeypatch.context() as patch:
        patch.setattr(F, "dropout", MaskedDropout(masks))
        patch.setattr(F, "dropout2d", MaskedDropout(masks, channels=True))
        output = module(*arguments)
    parameters = dict(module.named_parameters())
    keys = [key for key, source in network.weight_keys.items() if source in parameters]
    values = [parameters[network.weight_keys[key]] for key in keys] + [arguments[i] for i in floats]
    grads = torch.autograd.grad((output * torch.from_numpy(probe)).sum(), values)
    named = dict(zip(keys + [network.inputs[i].name for i in floats], grads))
    state = module.state_dict()
    # gx's sn_u is the module's u scaled to PyTorch's eval-mode sigma; a training step leaves
    # both the unit vector u = normalize(W v) (gx.importer.spectral)
    as_gx = (
        {key: state[source].numpy().copy() for key, source in network.weight_keys.items()}
        if training
        else network.weights(state)
    )
    return (
        output.detach().numpy(),
        {key: grad.numpy() for key, grad in named.items()},
        as_gx,
    )


def run_with_derived_vectors(module, network: ImportedNetwork, weights, probe, monkeypatch):
    """The module in eval mode with each spectral norm's vectors as gx's eval mode uses them:
    the imported (scaled) u, and v = normalize(Wᵀu) instead of the v its last training step
    stored. Its output stays what the module computes with its own v (asserted); the gradient
    of W then flows through gx's v: the one detail where gx's spectral norm and
    torch.nn.utils.spectral_norm differ (gx.importer.spectral)."""
    arguments, _ = example_inputs(network.inputs, BATCH, seed=1)
    with torch.no_grad():
        own = module.eval()(*arguments).numpy()
        for layer, keys in network.spectral_norms.items():
            u = torch.from_numpy(weights[f"{layer}.sn_u"])
            matrix = module.get_parameter(keys.weight).reshape(u.shape[0], -1)
            module.get_buffer(keys.u).copy_(u)
            module.get_buffer(keys.v).copy_(F.normalize(matrix.t() @ u, dim=0))
    result = run_original(module, network, False, probe, monkeypatch)
    assert relative_norm(result[0], own) <= TORCH_TOLERANCE
    return result


def run_gx(
    backend_name: str, network: ImportedNetwork, weights, training: bool, probe, dtype="float32"
):
    backend = get_backend(backend_name, "cpu", dtype)
    module = backend.build(network.spec, MaskSource(5))
    backend.load_weights(module, network.spec, weights)
    backend.set_training(module, training)
    _, inputs = example_inputs(network.inputs, BATCH, seed=1)
    tensors = {name: backend.tensor(value) for name, value in inputs.items()}
    if backend_name == "torch":
        for name, declared in zip(tensors, network.inputs):
            if declared.kind == "tensor":
                tensors[name].requires_grad_(True)
    output = module(tensors)
    parameters = backend.state_tensors(module, network.spec, trainable_only=True)
    floats = [declared.name for declared in network.inputs if declared.kind == "tensor"]
    values = list(parameters.values()) + [tensors[name] for name in floats]
    grads = backend.gradients((output * backend.tensor(probe)).sum(), values)
    named = dict(zip(list(parameters) + floats, grads))
    state = backend.state_tensors(module, network.spec)
    return (
        backend.numpy(output),
        {key: backend.numpy(grad) for key, grad in named.items()},
        {key: backend.numpy(tensor) for key, tensor in state.items()},
    )


def by_layer(grads: dict[str, np.ndarray], inputs: list[str]) -> dict[str, np.ndarray]:
    """Parameter gradients joined per layer; input gradients as they are."""
    joined: dict[str, list[np.ndarray]] = {}
    for key, grad in grads.items():
        joined.setdefault(key if key in inputs else key.split(".")[0], []).append(grad.ravel())
    return {key: np.concatenate(parts) for key, parts in joined.items()}


def compared(result, float_inputs: list[str]) -> dict[str, np.ndarray]:
    """Every value one run is judged on: output, gradients per layer, parameters and buffers
    after the forward (running statistics move in training mode)."""
    output, grads, state = result
    return {
        "output": output,
        **{f"gradient of {key}": grad for key, grad in by_layer(grads, float_inputs).items()},
        **state,
    }


def check(backend: str, mode: str, got, expected, exact) -> None:
    """gx's values ``got`` against the module's ``expected``; for Jittor, each within the floor
    of the module's float32 value (its distance from gx's PyTorch backend in float64, ``exact``)."""
    assert set(got) == set(expected)
    for what, reference in expected.items():
        assert got[what].shape == reference.shape, (mode, what)
        error = relative_norm(got[what], reference)
        if backend == "torch":
            assert error <= TORCH_TOLERANCE, (mode, what, error)
        else:
            floor = relative_norm(reference, exact[what])
            assert agrees(error, floor), (
                f"{mode} {what}: {error:.2e} from PyTorch, allowed {allowed_difference(floor):.2e}"
            )


def check_network(name: str, backend: str, monkeypatch, tamper=None) -> None:
    """Import ``name`` and compare gx's ``backend`` with the module; ``tamper(network,
    weights)`` returns another network and weights for gx to compile (the negative controls)."""
    cls, inputs = NETWORKS[name]
    module = randomized(cls)
    network = import_network(module, inputs)
    counted = sum(row.parameters for row in layer_rows(network.spec))  # as gx summary counts
    assert counted == sum(p.numel() for p in module.parameters()) == network.module_parameters
    weights = network.weights(module.state_dict())
    compiled, compiled_weights = (network, weights) if tamper is None else tamper(network, weights)
    float_inputs = [d.name for d in network.inputs if d.kind == "tensor"]
    saved = {key: tensor.clone() for key, tensor in module.state_dict().items()}
    for training in (True, False):
        mode = "training" if training else "eval"
        probe = (
            np.random.default_rng(2)
            .standard_normal((BATCH, *network.spec.output_value.shape))
            .astype(np.float32)
        )
        got = run_gx(backend, compiled, compiled_weights, training, probe)
        exact = run_gx("torch", network, weights, training, probe, "float64")
        if training or not network.spectral_norms:
            expected = run_original(module, network, training, probe, monkeypatch)
        else:
            expected = run_with_derived_vectors(module, network, weights, probe, monkeypatch)
        with torch.no_grad():  # undo the running statistics and vectors the forward updated
            for key, tensor in module.state_dict().items():
                tensor.copy_(saved[key])
        check(
            backend,
            mode,
            *(compared(result, float_inputs) for result in (got, expected, exact)),
        )


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.slow
def test_imported_network_computes_the_module_in_torch(name, monkeypatch):
    check_network(name, "torch", monkeypatch)


@pytest.mark.jittor
@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.slow
def test_imported_network_computes_the_module_in_jittor(name, monkeypatch):
    check_network(name, "jittor", monkeypatch)


def changed_weight(network: ImportedNetwork, weights):
    """conv2's weights, where Jittor's rounding in cdcgan's discriminator starts, off by 1e-4."""
    return network, {**weights, "conv2.weight": weights["conv2.weight"] * np.float32(1 + 1e-4)}


def changed_slope(network: ImportedNetwork, weights):
    """The LeakyReLU after conv2 with a slope of 0.21 instead of 0.2."""
    nodes = tuple(
        dataclasses.replace(node, layer=dataclasses.replace(node.layer, slope=0.21))
        if node.name == "leaky_relu_2"
        else node
        for node in network.spec.nodes
    )
    assert nodes != network.spec.nodes
    spec = dataclasses.replace(network.spec, nodes=nodes)
    return dataclasses.replace(network, spec=spec), weights


@pytest.mark.jittor
@pytest.mark.parametrize("tamper", [changed_weight, changed_slope])
def test_the_floor_still_catches_a_wrong_weight_or_layer_in_jittor(tamper, monkeypatch):
    """The network whose comparison needed the floor (a fixed 1e-5 failed it on a Xeon) must
    still fail it when gx computes something else."""
    with pytest.raises(AssertionError, match="training output: .* from PyTorch, allowed"):
        check_network("cdcgan_discriminator", "jittor", monkeypatch, tamper)


def test_import_names_layers_after_attribute_paths():
    spec = gx_api.import_module(HANDWRITTEN.CganGenerator(), {"z": "100", "label": "class:10"})
    layers = {node.name: node.layer.kind for node in spec.nodes}
    assert layers["label_emb"] == "embedding" and layers["model_0"] == "linear"
    assert layers["model_3"] == "batch_norm" and spec.infos[5].layer.eps == 0.8
    assert layers["cat"] == "concat" and layers["view"] == "reshape"
    assert spec.output_value.shape == (1, 32, 32)


def test_branches_on_static_properties_leave_no_trace_in_the_spec():
    """The DCGAN example's device branch and the shape branches take the examples' way and add
    no layer; a shape computed from x.shape stays a constant, the batch size a -1."""
    kinds = [
        node.layer.kind for node in import_network(ExampleGenerator(), {"z": "16x1x1"}).spec.nodes
    ]
    assert kinds == ["conv_transpose2d", "batch_norm", "relu"] * 2 + ["conv_transpose2d", "tanh"]
    spec = import_network(ShapeBranchGenerator(), {"z": "16"}).spec
    layers = [(node.name, node.layer.kind) for node in spec.nodes]
    assert layers == [
        ("view", "reshape"), ("up", "conv_transpose2d"), ("relu", "relu"),
        ("head", "conv2d"), ("view_1", "flatten"), ("tanh", "tanh"), ("view_2", "reshape"),
    ]  # fmt: skip
    assert spec.infos[0].layer.shape == (16, 1, 1) and spec.output_value.shape == (1, 4, 4)
    # a colour head takes the other branch
    colour = import_network(ShapeBranchGenerator(channels=3), {"z": "16"}).spec
    assert [node.layer.kind for node in colour.nodes][-2:] == ["conv2d", "tanh"]


def test_spectral_norm_reads_the_module_u_scaled_to_its_eval_sigma():
    """gx's sn_u is the module's u times (u·Wv) / |Wᵀu|: the same direction (training steps
    alike), and gx's eval sigma |Wᵀ sn_u| equal to PyTorch's u·Wv from its stored v."""
    module = randomized(SnganDiscriminator)
    network = import_network(module, {"image": "3x8x8"})
    assert network.spectral_norms == {
        "main_0": SpectralNormKeys("main.0.weight_orig", "main.0.weight_u", "main.0.weight_v"),
        "main_2": SpectralNormKeys("main.2.weight_orig", "main.2.weight_u", "main.2.weight_v"),
        "score": SpectralNormKeys("score.weight_orig", "score.weight_u", "score.weight_v"),
    }
    normalized = [n.name for n in network.spec.nodes if getattr(n.layer, "spectral_norm", False)]
    assert normalized == ["main_0", "main_2", "score"]
    assert network.weight_keys["main_0.weight"] == "main.0.weight_orig"
    weights = network.weights(module.state_dict())
    for layer, keys in network.spectral_norms.items():
        matrix = module.get_parameter(keys.weight).detach().double().flatten(1)
        u, v = (module.get_buffer(key).double() for key in (keys.u, keys.v))
        gx_u = torch.from_numpy(weights[f"{layer}.sn_u"]).double()
        scale = float(gx_u.norm())
        assert 0.9 < scale < 0.99 and torch.allclose(gx_u / scale, u, atol=1e-6)
        pytorch_sigma = float(u @ matrix @ v)
        assert abs(float(torch.linalg.vector_norm(matrix.t() @ gx_u)) / pytorch_sigma - 1) < 1e-6


def test_a_spectral_norm_that_never_trained_imports_for_training():
    """Before its first training step a spectral norm's u and v are unrelated random vectors
    and its eval-mode sigma u·Wv can be negative, which gx's |Wᵀu| cannot be: gx takes u as it
    is, and the import's check settles v as the first training step will. Training steps
    compute the same as the module's."""
    torch.manual_seed(1)
    module = SnganDiscriminator()
    network = import_network(module, {"image": "3x8x8"})
    weights = network.weights(module.state_dict())
    signs = {}
    for layer, keys in network.spectral_norms.items():
        u, v = module.get_buffer(keys.u), module.get_buffer(keys.v)
        signs[layer] = float(u @ module.get_parameter(keys.weight).detach().flatten(1) @ v) > 0
        if not signs[layer]:
            np.testing.assert_array_equal(weights[f"{layer}.sn_u"], u.numpy())
    assert signs == {"main_0": False, "main_2": False, "score": True}
    backend = get_backend("torch", "cpu")
    compiled = backend.build(network.spec, MaskSource(0))
    backend.load_weights(compiled, network.spec, weights)
    backend.set_training(compiled, True)
    module.train()
    for seed in (1, 2):  # two training steps: the second starts from the updated vectors
        arguments, inputs = example_inputs(network.inputs, BATCH, seed=seed)
        with torch.no_grad():
            got = compiled({"image": backend.tensor(inputs["image"])}).numpy()
            expected = module(*arguments).numpy()
        assert relative_norm(got, expected) <= TORCH_TOLERANCE
    state = backend.state_tensors(compiled, network.spec)
    for layer, keys in network.spectral_norms.items():
        u = state[f"{layer}.sn_u"].numpy()
        assert relative_norm(u, module.get_buffer(keys.u).numpy()) <= TORCH_TOLERANCE


# -- the command line ------------------------------------------------------------------------------


def import_command(tmp_path: Path, network: str, *options: str) -> tuple[int, str]:
    return gx("import", f"{NETWORKS_FILE}:{network}", *options)


def test_cli_writes_one_spec_and_its_weights(tmp_path):
    module = randomized(OneHotGenerator)
    torch.save(module.state_dict(), tmp_path / "G.pt")
    out = tmp_path / "generator.yaml"
    status, output = import_command(
        tmp_path, "OneHotGenerator", "--input", "z=16", "--input", "label=class:10",
        "--weights", tmp_path / "G.pt", "--out", out,
    )  # fmt: skip
    assert status == 0, output
    count = sum(parameter.numel() for parameter in module.parameters())
    assert f"imported OneHotGenerator: 13 layers, {count:,} parameters" in output
    written = yaml.safe_load(out.read_text())
    assert written["inputs"] == {"z": [16], "label": {"classes": 10}}
    assert [layer["name"] for layer in written["layers"]][:3] == [
        "label_one_hot", "cat", "stem_0"
    ]  # fmt: skip
    weights = load_file(str(tmp_path / "generator.safetensors"))
    np.testing.assert_array_equal(weights["stem_0.weight"], module.stem[0].weight.detach().numpy())
    np.testing.assert_array_equal(weights["norm.running_var"], module.norm.running_var.numpy())


def test_cli_import_folder_makes_an_experiment_and_a_checkpoint_gx_samples(tmp_path):
    generator, discriminator = randomized(OneHotGenerator), randomized(LabelMapDiscriminator)
    torch.save(generator.state_dict(), tmp_path / "G.pt")
    from safetensors.torch import save_file

    save_file(discriminator.state_dict(), str(tmp_path / "D.safetensors"))
    folder = tmp_path / "imported"
    status, output = import_command(
        tmp_path, "OneHotGenerator", "--input", "z=16", "--input", "label=class:10",
        "--weights", tmp_path / "G.pt", "--out", folder,
    )  # fmt: skip
    assert status == 0 and "experiment.yaml" not in output, output
    status, output = import_command(
        tmp_path, "LabelMapDiscriminator", "--input", "image=1x8x8", "--input", "label=class:10",
        "--weights", tmp_path / "D.safetensors", "--out", folder,
    )  # fmt: skip
    assert status == 0, output
    assert f"wrote {folder / 'experiment.yaml'}" in output
    assert f"wrote {folder / 'checkpoint'}" in output
    state = json.loads((folder / "checkpoint" / "state.json").read_text())
    assert state["step"] == 0 and state["experiment"] == "imported"
    # the checkpoint's generator is the module: the same images from the same noise and labels
    backend, sampler, model = load_generator(folder, "torch", "cpu")
    noise = np.random.default_rng(0).standard_normal((6, 16), dtype=np.float32)
    labels = np.arange(6)
    with torch.no_grad():
        images = backend.numpy(
            sampler({"z": backend.tensor(noise), "label": backend.tensor(labels)})
        )
        generator.eval()
        expected = generator(torch.from_numpy(noise), torch.from_numpy(labels)).numpy()
    assert relative_norm(images, expected) <= TORCH_TOLERANCE
    status, output = gx("summary", folder / "experiment.yaml")
    for network in (generator, discriminator):
        count = sum(parameter.numel() for parameter in network.parameters())
        assert status == 0 and f"total parameters: {count:,}" in output
    # imported weights carry no training state: resuming them is one error, nothing written
    before = sorted(path.name for path in folder.rglob("*"))
    status, output = gx("run", folder / "experiment.yaml", "--backend", "torch", "--resume", folder)
    assert status == 2 and output.startswith("error: ") and len(output.splitlines()) == 1, output
    assert "holds weights imported from" in output and "gx run " in output
    assert sorted(path.name for path in folder.rglob("*")) == before


def test_a_sigmoid_followed_by_reshapes_gives_the_folder_the_bce_loss(tmp_path):
    """The DCGAN example's D ends in sigmoid, view(-1, 1), squeeze(1): still probabilities."""
    folder = tmp_path / "dcgan"
    for network, declaration in (("ExampleGenerator", "z=16x1x1"),
                                 ("ExampleDiscriminator", "image=1x16x16")):  # fmt: skip
        status, output = import_command(tmp_path, network, "--input", declaration, "--out", folder)
        assert status == 0, output
    experiment = yaml.safe_load((folder / "experiment.yaml").read_text())
    layers = experiment["model"]["discriminator"]["layers"]
    assert [layer["kind"] for layer in layers[-3:]] == ["sigmoid", "flatten", "reshape"]
    assert layers[-1]["shape"] == [] and experiment["train"]["loss"] == "bce"
    assert experiment["data"]["image_size"] == 16


@pytest.mark.parametrize("generator_first", [True, False])
def test_a_discriminator_of_flat_images_reads_the_folders_images(tmp_path, generator_first):
    """PyTorch-GAN's cgan pair: G makes 1x8x8 images, D was declared image=64. The folder's D
    takes 1x8x8 images and flattens each first, and computes what the module computes on the
    flattened image (its shape taken from G, or, imported first, from 64 = 1x8x8)."""
    discriminator = randomized(FlatCganDiscriminator)
    torch.save(discriminator.state_dict(), tmp_path / "D.pt")
    folder = tmp_path / "cgan"
    imports = [
        ("CganGenerator", ["--input", "z=16", "--input", "label=class:10"]),
        ("FlatCganDiscriminator",
         ["--input", "image=64", "--input", "label=class:10", "--weights", tmp_path / "D.pt"]),
    ]  # fmt: skip
    for network, options in imports if generator_first else imports[::-1]:
        status, output = import_command(tmp_path, network, *options, "--out", folder)
        assert status == 0, output
        if network == "FlatCganDiscriminator":
            assert (
                "the folder's discriminator takes 1x8x8 images and flattens each into the 64 "
                "values it was declared with" in output.splitlines()
            ), output
    assert (folder / "experiment.yaml").is_file()
    spec = ModelSpec.from_dict(yaml.safe_load((folder / "discriminator.yaml").read_text()))
    assert spec.inputs["image"].shape == (1, 8, 8) and spec.nodes[0].layer.kind == "flatten"
    joined = next(node for node in spec.nodes if node.layer.kind == "concat")
    assert spec.nodes[0].name == "image_flat" and joined.inputs == ("image_flat", "label_embedding")
    backend = get_backend("torch", "cpu")
    compiled = backend.build(spec, MaskSource(0))
    backend.load_weights(compiled, spec, load_file(str(folder / "discriminator.safetensors")))
    backend.set_training(compiled, False)
    rng = np.random.default_rng(3)
    images = rng.standard_normal((6, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 10, 6)
    discriminator.eval()
    with torch.no_grad():
        got = compiled({"image": backend.tensor(images), "label": backend.tensor(labels)})
        expected = discriminator(torch.from_numpy(images).view(6, 64), torch.from_numpy(labels))
    assert relative_norm(got.numpy(), expected.numpy()) <= TORCH_TOLERANCE


def test_flat_images_that_make_no_square_image_are_one_error(tmp_path):
    folder = tmp_path / "folder"
    status, output = import_command(
        tmp_path, "FeatureDiscriminator", "--input", "image=50", "--out", folder
    )
    assert status == 2 and output == (
        "error: an import folder trains on images, and 50 values per sample make no square "
        "1xHxH or 3xHxH image; import the other network into the folder first, or declare the "
        "images as CxHxW\n"
    ), output
    assert not folder.exists()


# -- what gx cannot import: one error line, exit 2, nothing written -------------------------------


def source_line(text: str) -> int:
    """The line of import_networks.py that holds ``text``."""
    lines = NETWORKS_FILE.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize(
    "network, declared, operation, module, code, problem",
    [
        ("WithElu", "z=8", "nn.ELU", "module 'main.1'", "nn.ELU(),",
         "has no gx layer kind; the nearest gx has: relu (nn.ReLU), leaky_relu (nn.LeakyReLU)"),
        ("WithElementwiseElu", "z=8", "F.elu", "the network's own forward",
         "return F.elu(self.fc(z))", "the nearest gx has: relu (nn.ReLU, F.relu, torch.relu"),
        ("WithLocalResponseNorm", "z=8", "nn.LocalResponseNorm", "module 'norm'",
         "self.norm = nn.LocalResponseNorm(2)", "batch_norm (nn.BatchNorm1d, nn.BatchNorm2d)"),
        ("WithAutogradFunction", "z=8", "custom torch.autograd.Function",
         "the network's own forward", "return Doubled.apply(self.fc(z))", "write it with layers"),
        ("WithBranch", "z=8", "tracing stopped", "the network's own forward", "if x.mean() > 0:",
         "the branch depends on the values of a tensor"),
        ("WithBatchBranch", "z=8", "tracing stopped", "the network's own forward",
         "if z.size(0) > 1:", "the branch depends on the batch size"),
        ("WithDropoutAlwaysOn", "z=8", "F.dropout", "the network's own forward",
         "return F.dropout(self.fc(z), 0.5)", "stays active in eval mode"),
        ("WithTwoPowerIterations", "z=8", "nn.Linear", "module 'fc'",
         "self.fc = spectral_norm(nn.Linear(8, 4), n_power_iterations=2)",
         "runs 2 power iterations per training step; gx's spectral norm runs one"),
        ("WithSpectralEps", "z=8", "nn.Linear", "module 'fc'",
         "self.fc = spectral_norm(nn.Linear(8, 4), eps=1e-6)",
         "normalizes with eps=1e-06; gx's spectral norm uses PyTorch's default 1e-12"),
        ("WithWeightNorm", "z=8", "nn.Linear", "module 'fc'",
         "self.fc = parametrizations.weight_norm(nn.Linear(8, 4))",
         "has tensors computed by torch.nn.utils.parametrize ('weight' by WeightNorm)"),
        ("ParametrizedSnDiscriminator", "image=3x8x8", "nn.Conv2d", "module 'conv'",
         "self.conv = parametrizations.spectral_norm(nn.Conv2d(3, 8, 3, 1, 1))",
         "whose power iteration starts from v"),
        ("WithUpsampleToSize", "z=8", "nn.Upsample", "module 'up'",
         "self.up = nn.Upsample(size=8)", "gives an output size; gx's upsample takes an integer"),
        ("WithCornersAligned", "z=8", "F.interpolate", "the network's own forward",
         'return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)',
         "aligns corners (align_corners=True)"),
        ("WithPaddingOutOfTheAverage", "z=8", "nn.AvgPool2d", "module 'pool'",
         "self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)",
         "leaves the padded zeros out of each average"),
        ("WithConstantFactor", "z=8", "operator.mul", "the network's own forward",
         "return self.fc(z) * 2", "multiplies a tensor by a constant"),
        ("WithSoftmaxOverWidth", "z=8", "F.softmax", "the network's own forward",
         "return F.softmax(self.fc(z).view(-1, 1, 4, 4), dim=3)", "normalizes over dim 3"),
        ("WithChannelDropoutAlwaysOn", "z=8", "F.dropout2d", "the network's own forward",
         "return F.dropout2d(self.fc(z).view(-1, 4, 2, 2), 0.5)", "stays active in eval mode"),
        ("WithTrackedInstanceNorm", "z=8", "nn.InstanceNorm2d", "module 'norm'",
         "self.norm = nn.InstanceNorm2d(2, track_running_stats=True)",
         "build it with track_running_stats=False (nn.InstanceNorm2d's default)"),
        ("WithLastAxisLayerNorm", "z=8", "nn.LayerNorm", "module 'norm'",
         "self.norm = nn.LayerNorm(4)",
         "gx's layer_norm normalizes each sample whole: nn.LayerNorm((3, 4))"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_what_gx_cannot_express_is_one_error_naming_operation_module_and_line(
    tmp_path, network, declared, operation, module, code, problem
):
    out = tmp_path / "spec.yaml"
    status, output = import_command(tmp_path, network, "--input", declared, "--out", out)
    assert status == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {network}: "), output
    assert operation in lines[0] and module in lines[0] and problem in lines[0]
    assert f"import_networks.py:{source_line(code)} `{code}`" in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "declared, message",
    [
        (["z=8"], "WithVariadicLabel fails on the declared inputs (IndexError: tuple index out "
         "of range); gx calls forward with the declared inputs only, *args empty"),
        (["z=8", "label=class:10"], "2 inputs declared, but WithVariadicLabel.forward names 1 "
         "(z) and takes the rest through *args, which gx leaves empty"),
    ],
)  # fmt: skip
def test_inputs_forward_reads_through_args_are_refused(tmp_path, declared, message):
    options = [item for text in declared for item in ("--input", text)]
    status, output = import_command(
        tmp_path, "WithVariadicLabel", *options, "--out", tmp_path / "g"
    )
    assert status == 2 and output.startswith(f"error: {message}"), output
    assert len(output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--input", "z=7"], "fails on the declared inputs"),
        (["--input", "z=8x"], "cannot read '8x'"),
        (["--input", "noise=8", "--input", "z=4"], "2 inputs declared"),
        (["--input", "z=8", "--args", "{bad"], "--args is not valid JSON"),
        (["--input", "z=8", "--weights", "missing.pt"], "no such file"),
    ],
)
def test_bad_command_lines_are_one_error_and_nothing_written(tmp_path, arguments, message):
    out = tmp_path / "spec.yaml"
    status, output = import_command(tmp_path, "WithElu", *arguments, "--out", out)
    assert status == 2 and message in output, output
    assert output.count("error:") == 1 and not out.exists()


def test_weights_of_another_network_are_refused_and_nothing_written(tmp_path):
    torch.save(TinyDiscriminator().state_dict(), tmp_path / "D.pt")
    folder = tmp_path / "imported"
    status, output = import_command(
        tmp_path, "TinyGenerator", "--input", "z=8", "--weights", tmp_path / "D.pt",
        "--out", folder,
    )  # fmt: skip
    assert status == 2 and "does not fit TinyGenerator" in output, output
    assert not folder.exists()


def test_a_pickled_object_is_not_unpickled(tmp_path):
    torch.save({"net": TinyGenerator()}, tmp_path / "G.pt")  # a module, not a state_dict
    status, output = import_command(
        tmp_path, "TinyGenerator", "--input", "z=8", "--weights", tmp_path / "G.pt",
        "--out", tmp_path / "g.yaml",
    )  # fmt: skip
    assert status == 2 and "cannot be read as tensors" in output, output


# -- parity of an imported GAN --------------------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.slow
def test_imported_gan_trains_the_same_on_both_backends(tmp_path, mnist_root):
    folder = tmp_path / "tiny"
    for network, declaration in (("TinyGenerator", "z=8"), ("TinyDiscriminator", "image=1x8x8")):
        status, output = import_command(tmp_path, network, "--input", declaration, "--out", folder)
        assert status == 0, output
    check = assert_parity(
        folder / "experiment.yaml",
        steps=6,
        seeds=3,
        data_root=str(mnist_root),
        overrides=["data.split=test", "train.batch_size=16"],
    )
    assert check.within and "tiny: WITHIN the float32 rounding floor over 6 steps" in check.verdict
    assert [seed.seed for seed in check.seeds] == [0, 1, 2]
    for seed in check.seeds:
        assert set(seed.cross) == {"0.0001", "0.001", "0.01"}
        assert all(1 <= step <= 7 for step in seed.cross.values())


def test_assert_parity_failure_shows_each_seed_against_its_floor(monkeypatch):
    def outside(seed: int) -> SeedRun:
        cross = [1e-5, 5e-4, 2e-3, 0.02]
        floor = [1e-7, 1e-6, 1e-5, 1e-5]
        return SeedRun(seed, 4, {}, cross, {"torch_float64": floor}, floor)

    seeds = [outside(0), outside(1)]
    check = ParityCheck(
        False, "tiny: OUTSIDE the floor", [SeedCrossings.of(s) for s in seeds], None
    )
    monkeypatch.setattr("gx.testing.check_parity", lambda *args: check)
    with pytest.raises(AssertionError) as failure:
        assert_parity("tiny.yaml", steps=4, seeds=2)
    lines = str(failure.value).splitlines()
    assert lines == [
        "tiny: OUTSIDE the floor",
        "seed 0: torch vs jittor over 0.0001 / 0.001 / 0.01 at steps 2 / 3 / 4; "
        "floor 5 / 5 / 5, allowed from 3 / 3 / 3: OUTSIDE",
        "seed 1: torch vs jittor over 0.0001 / 0.001 / 0.01 at steps 2 / 3 / 4; "
        "floor 5 / 5 / 5, allowed from 3 / 3 / 3: OUTSIDE",
    ]
