"""Model specs without any framework: shapes, parameter counts, round trips and every mistake.

Expected shapes and parameter counts are written out by hand from
docs/models.md (weight + bias, or scale + shift for batch norm), so a change in
gx's inference or in a reference model shows up here as a number that no longer adds up.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gx.config import load_experiment, model_for
from gx.errors import GxError, SpecError
from gx.layers import LAYER_KINDS
from gx.models import GanModel, build_model
from gx.spec import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
DCGAN_DENSE = REPO_ROOT / "experiments" / "dcgan_dense.yaml"


def bn(channels: int) -> int:
    """A batch norm's trainable parameters: a scale and a shift per channel."""
    return 2 * channels


# (layer, per-sample output shape, parameter count) for every layer, in spec order.
EXPECTED_LAYERS: dict[tuple[str, str], list[tuple[str, tuple[int, ...], int]]] = {
    ("cdcgan", "generator"): [
        ("x_deconv", (256, 4, 4), 100 * 256 * 4 * 4),
        ("x_bn", (256, 4, 4), bn(256)),
        ("x_relu", (256, 4, 4), 0),
        ("y_onehot", (10, 1, 1), 0),
        ("y_deconv", (256, 4, 4), 10 * 256 * 4 * 4),
        ("y_bn", (256, 4, 4), bn(256)),
        ("y_relu", (256, 4, 4), 0),
        ("joined", (512, 4, 4), 0),
        ("deconv2", (128, 8, 8), 512 * 128 * 4 * 4),
        ("bn2", (128, 8, 8), bn(128)),
        ("relu2", (128, 8, 8), 0),
        ("deconv3", (64, 16, 16), 128 * 64 * 4 * 4),
        ("bn3", (64, 16, 16), bn(64)),
        ("relu3", (64, 16, 16), 0),
        ("deconv4", (1, 28, 28), 64 * 1 * 4 * 4),  # (16 - 1) * 2 - 2 * 3 + 4 = 28
        ("image", (1, 28, 28), 0),
    ],
    ("cdcgan", "discriminator"): [
        ("x_conv", (64, 14, 14), 1 * 64 * 4 * 4 + 64),
        ("x_lrelu", (64, 14, 14), 0),
        ("y_map", (10, 28, 28), 0),
        ("y_conv", (64, 14, 14), 10 * 64 * 4 * 4 + 64),
        ("y_lrelu", (64, 14, 14), 0),
        ("joined", (128, 14, 14), 0),
        ("conv2", (64, 7, 7), 128 * 64 * 4 * 4 + 64),
        ("lrelu2", (64, 7, 7), 0),
        ("conv3", (128, 4, 4), 64 * 128 * 3 * 3 + 128),  # (7 + 2 - 3) // 2 + 1 = 4
        ("lrelu3", (128, 4, 4), 0),
        ("conv4", (1, 1, 1), 128 * 1 * 4 * 4 + 1),
        ("probability", (1, 1, 1), 0),
    ],
    ("dcgan", "generator"): [
        ("deconv1", (256, 4, 4), 100 * 256 * 4 * 4),
        ("bn1", (256, 4, 4), bn(256)),
        ("relu1", (256, 4, 4), 0),
        ("deconv2", (128, 8, 8), 256 * 128 * 4 * 4),
        ("bn2", (128, 8, 8), bn(128)),
        ("relu2", (128, 8, 8), 0),
        ("deconv3", (64, 16, 16), 128 * 64 * 4 * 4),
        ("bn3", (64, 16, 16), bn(64)),
        ("relu3", (64, 16, 16), 0),
        ("deconv4", (1, 28, 28), 64 * 1 * 4 * 4),
        ("image", (1, 28, 28), 0),
    ],
    ("dcgan", "discriminator"): [
        ("conv1", (64, 14, 14), 1 * 64 * 4 * 4),
        ("bn1", (64, 14, 14), bn(64)),
        ("lrelu1", (64, 14, 14), 0),
        ("conv2", (128, 7, 7), 64 * 128 * 4 * 4),
        ("bn2", (128, 7, 7), bn(128)),
        ("lrelu2", (128, 7, 7), 0),
        ("conv3", (256, 4, 4), 128 * 256 * 3 * 3),
        ("bn3", (256, 4, 4), bn(256)),
        ("lrelu3", (256, 4, 4), 0),
        ("conv4", (1, 1, 1), 256 * 1 * 4 * 4),  # (4 - 4) // 1 + 1 = 1
        ("probability", (1, 1, 1), 0),
    ],
    ("cgan", "generator"): [
        ("label_emb", (10,), 10 * 10),
        ("joined", (110,), 0),
        ("fc1", (128,), 110 * 128 + 128),
        ("act1", (128,), 0),
        ("fc2", (256,), 128 * 256 + 256),
        ("bn2", (256,), bn(256)),
        ("act2", (256,), 0),
        ("fc3", (512,), 256 * 512 + 512),
        ("bn3", (512,), bn(512)),
        ("act3", (512,), 0),
        ("fc4", (1024,), 512 * 1024 + 1024),
        ("bn4", (1024,), bn(1024)),
        ("act4", (1024,), 0),
        ("fc5", (1024,), 1024 * 1024 + 1024),
        ("tanh", (1024,), 0),
        ("image", (1, 32, 32), 0),
    ],
    ("cgan", "discriminator"): [
        ("flat", (1024,), 0),
        ("label_emb", (10,), 10 * 10),
        ("joined", (1034,), 0),
        ("fc1", (512,), 1034 * 512 + 512),
        ("act1", (512,), 0),
        ("fc2", (512,), 512 * 512 + 512),
        ("drop2", (512,), 0),
        ("act2", (512,), 0),
        ("fc3", (512,), 512 * 512 + 512),
        ("drop3", (512,), 0),
        ("act3", (512,), 0),
        ("score", (1,), 512 + 1),
    ],
    ("gan", "generator"): [
        ("fc1", (128,), 100 * 128 + 128),
        ("act1", (128,), 0),
        ("fc2", (256,), 128 * 256 + 256),
        ("bn2", (256,), bn(256)),
        ("act2", (256,), 0),
        ("fc3", (512,), 256 * 512 + 512),
        ("bn3", (512,), bn(512)),
        ("act3", (512,), 0),
        ("fc4", (1024,), 512 * 1024 + 1024),
        ("bn4", (1024,), bn(1024)),
        ("act4", (1024,), 0),
        ("fc5", (784,), 1024 * 784 + 784),
        ("tanh", (784,), 0),
        ("image", (1, 28, 28), 0),
    ],
    ("gan", "discriminator"): [
        ("flat", (784,), 0),
        ("fc1", (512,), 784 * 512 + 512),
        ("act1", (512,), 0),
        ("fc2", (256,), 512 * 256 + 256),
        ("act2", (256,), 0),
        ("score", (1,), 256 + 1),
        ("probability", (1,), 0),
    ],
}

# The totals, summed by hand from the lines above (cdcgan's generator is the figure quoted in
# the project brief).
EXPECTED_TOTALS = {
    ("cdcgan", "generator"): 1_632_640,
    ("cdcgan", "discriminator"): 218_433,
    ("dcgan", "generator"): 1_066_880,
    ("dcgan", "discriminator"): 432_000,
    ("cgan", "generator"): 1_757_412,
    ("cgan", "discriminator"): 1_055_845,
    ("gan", "generator"): 1_510_032,
    ("gan", "discriminator"): 533_505,
}

REFERENCE_NETWORKS = sorted(EXPECTED_LAYERS)


def network(model: GanModel, which: str) -> ModelSpec:
    return model.generator if which == "generator" else model.discriminator


@pytest.mark.parametrize("name,which", REFERENCE_NETWORKS)
def test_reference_shapes_and_parameter_counts(name: str, which: str) -> None:
    spec = network(build_model(name), which)
    inferred = [(info.name, info.output.shape, info.parameter_count) for info in spec.infos]
    assert inferred == EXPECTED_LAYERS[name, which]
    assert spec.parameter_count == EXPECTED_TOTALS[name, which]
    by_hand = sum(count for _, _, count in EXPECTED_LAYERS[name, which])
    assert by_hand == EXPECTED_TOTALS[name, which]


def test_reference_pairs_feed_each_other() -> None:
    shapes = {name: build_model(name).image_shape for name in ("cdcgan", "dcgan", "cgan", "gan")}
    assert shapes == {
        "cdcgan": (1, 28, 28),
        "dcgan": (1, 28, 28),
        "cgan": (1, 32, 32),
        "gan": (1, 28, 28),
    }
    classes = [build_model(name).classes for name in ("cdcgan", "dcgan", "cgan", "gan")]
    assert classes == [10, 0, 10, 0]


def test_cgan_keeps_the_published_batch_norm_eps() -> None:
    spec = build_model("cgan").generator
    eps = {info.name: info.layer.eps for info in spec.infos if info.kind == "batch_norm"}
    assert eps == {"bn2": 0.8, "bn3": 0.8, "bn4": 0.8}


def discriminator_layers(options: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, kind, LeakyReLU slope or output shape) of cdcgan's discriminator with options."""
    spec = build_model("cdcgan", options).discriminator
    return [
        (info.name, info.kind, getattr(info.layer, "slope", info.output.shape))
        for info in spec.infos
    ]


def test_cdcgan_defaults_are_the_seed_discriminator() -> None:
    seed = discriminator_layers({})
    assert [kind for _, kind, _ in seed].count("batch_norm") == 0
    assert {value for _, kind, value in seed if kind == "leaky_relu"} == {0.01}
    assert ("conv2", "conv2d", (64, 7, 7)) in seed and ("conv3", "conv2d", (128, 4, 4)) in seed
    explicit = {
        "leaky_slope": 0.01,
        "d_batch_norm": False,
        "d_width": 64,
        "d_dropout": 0.0,
        "g_bn_eps": 1e-5,
    }
    assert build_model("cdcgan", explicit).to_dict() == build_model("cdcgan").to_dict()


def test_cdcgan_options_change_only_the_discriminator_behind_the_concat() -> None:
    tuned = {"leaky_slope": 0.2, "d_batch_norm": True, "d_width": 128}
    layers = discriminator_layers(tuned)
    names = [name for name, _, _ in layers]
    assert names[names.index("joined") :] == [
        "joined",
        "conv2",
        "bn2",
        "lrelu2",
        "conv3",
        "bn3",
        "lrelu3",
        "conv4",
        "probability",
    ]
    assert ("conv2", "conv2d", (128, 7, 7)) in layers and ("conv3", "conv2d", (256, 4, 4)) in layers
    assert {value for _, kind, value in layers if kind == "leaky_relu"} == {0.2}
    model = build_model("cdcgan", tuned)
    assert model.generator.to_dict() == build_model("cdcgan").generator.to_dict()
    generator = build_model("cdcgan", {"g_bn_eps": 0.8}).generator
    eps = {info.name: info.layer.eps for info in generator.infos if info.kind == "batch_norm"}
    assert eps == {"x_bn": 0.8, "y_bn": 0.8, "bn2": 0.8, "bn3": 0.8}
    # conv2 128x128x4x4 + 128, bn2 2x128, conv3 256x128x3x3 + 256, bn3 2x256, conv4 256x4x4 + 1
    # on top of the two branches (64x1x4x4 + 64, 64x10x4x4 + 64)
    by_hand = (1088 + 10304) + (262144 + 128) + 256 + (294912 + 256) + 512 + (4096 + 1)
    assert model.discriminator.parameter_count == by_hand


@pytest.mark.parametrize(
    "options,expected",
    [
        (
            {"d_batch_norm": "yes"},
            "option 'd_batch_norm' takes a bool like its default False, got 'yes'",
        ),
        ({"d_width": 1.5}, "option 'd_width' takes a int like its default 64, got 1.5"),
        (
            {"leaky_slope": True},
            "option 'leaky_slope' takes a float like its default 0.01, got True",
        ),
    ],
)
def test_model_options_of_the_wrong_kind_are_refused(options: dict, expected: str) -> None:
    with pytest.raises(GxError) as caught:
        build_model("cdcgan", options)
    assert str(caught.value) == f"model 'cdcgan': {expected}"


def test_cdcgan_experiments_are_the_flagship_and_the_seed_recipe() -> None:
    flagship = load_experiment(REPO_ROOT / "experiments" / "cdcgan.yaml")
    assert flagship.model.options == {
        "d_batch_norm": True,
        "leaky_slope": 0.2,
        "g_bn_eps": 0.8,
        "d_projection": True,
    }
    assert flagship.train.ema_decay == 0.995 and flagship.optimizer.schedule.decay == "none"
    seed = load_experiment(REPO_ROOT / "experiments" / "cdcgan_seed.yaml")
    assert seed.model.options == {} and seed.model.init == "default"
    assert (seed.train.batch_size, seed.train.epochs, seed.train.order, seed.train.loss) == (
        4,
        10,
        "d_then_g",
        "bce",
    )
    for settings in (seed.optimizer.generator, seed.optimizer.discriminator):
        assert (settings.kind, settings.lr, settings.betas) == ("adam", 1e-5, (0.9, 0.999))
    assert [(m.epoch, m.factor) for m in seed.optimizer.milestones] == [(8, 0.2)]


def test_cdcgan_hinge_is_the_flagship_with_raw_scores_and_the_hinge_loss() -> None:
    flagship = load_experiment(REPO_ROOT / "experiments" / "cdcgan.yaml")
    hinge = load_experiment(REPO_ROOT / "experiments" / "cdcgan_hinge.yaml")
    assert hinge.model.options == {**flagship.model.options, "d_output": "logit"}
    assert hinge.train == replace(flagship.train, loss="hinge")
    assert (hinge.data, hinge.optimizer, hinge.seed) == (
        flagship.data,
        flagship.optimizer,
        flagship.seed,
    )


def test_state_shapes_use_pytorch_layouts() -> None:
    shapes = build_model("cdcgan").generator.state_shapes()
    # ConvTranspose2d weights are (in, out, k, k); batch norm keeps four tensors.
    assert shapes["x_deconv.weight"] == (100, 256, 4, 4)
    assert [key for key in shapes if key.startswith("x_bn.")] == [
        "x_bn.weight",
        "x_bn.bias",
        "x_bn.running_mean",
        "x_bn.running_var",
    ]
    d_shapes = build_model("cgan").discriminator.state_shapes()
    assert d_shapes["fc1.weight"] == (512, 1034)
    assert d_shapes["label_emb.weight"] == (10, 10)


# -- round trips --------------------------------------------------------------------------------


def all_specs() -> list[tuple[str, ModelSpec]]:
    specs = [
        (f"{name}-{which}", network(build_model(name), which)) for name, which in REFERENCE_NETWORKS
    ]
    dense = model_for(load_experiment(DCGAN_DENSE))
    # every layer kind with the arguments of its parity cases
    cases = [
        (f"case-{name}", ModelSpec.from_dict(case.spec_dict(kind)))
        for kind, definition in LAYER_KINDS.items()
        for name, case in definition.parity_cases.items()
    ]
    return [
        *specs,
        *cases,
        ("dcgan_dense-generator", dense.generator),
        ("dcgan_dense-discriminator", dense.discriminator),
    ]


SPECS = all_specs()


@pytest.mark.parametrize("spec", [spec for _, spec in SPECS], ids=[label for label, _ in SPECS])
def test_spec_round_trips_through_dict_and_yaml(spec: ModelSpec) -> None:
    plain = spec.to_dict()
    assert ModelSpec.from_dict(plain) == spec
    text = yaml.safe_dump(plain, sort_keys=False)
    again = ModelSpec.from_dict(yaml.safe_load(text))
    assert again == spec
    assert again.to_dict() == plain
    # Equality covers the graph; the inferred shapes must follow from it identically.
    assert [(i.name, i.output, i.parameters, i.buffers) for i in again.infos] == [
        (i.name, i.output, i.parameters, i.buffers) for i in spec.infos
    ]


def test_round_trip_keeps_every_argument() -> None:
    spec = ModelSpec.from_dict(
        {
            "inputs": {"x": [3, 8, 8], "label": {"classes": 4}},
            "init": "dcgan",
            "layers": [
                {
                    "name": "up",
                    "kind": "conv_transpose2d",
                    "input": "x",
                    "out": 2,
                    "kernel": 3,
                    "stride": 2,
                    "padding": 1,
                    "output_padding": 1,
                    "bias": False,
                },
                {"name": "norm", "kind": "batch_norm", "eps": 0.8, "momentum": 0.3},
                {"name": "act", "kind": "leaky_relu", "slope": 0.2},
                {"name": "labels", "kind": "label_map", "input": "label", "size": [16, 16]},
                {"name": "joined", "kind": "concat", "input": ["act", "labels"]},
                {"name": "drop", "kind": "dropout", "p": 0.25},
            ],
            "output": "drop",
        }
    )
    plain = spec.to_dict()
    layers = {entry["name"]: entry for entry in plain["layers"]}
    assert layers["up"] == {
        "name": "up",
        "kind": "conv_transpose2d",
        "input": "x",
        "out": 2,
        "kernel": 3,
        "stride": 2,
        "padding": 1,
        "output_padding": 1,
        "bias": False,
    }
    assert layers["norm"]["eps"] == 0.8 and layers["norm"]["momentum"] == 0.3
    assert layers["labels"]["size"] == [16, 16] and layers["labels"]["input"] == "label"
    assert plain["init"] == "dcgan" and plain["output"] == "drop"
    assert ModelSpec.from_dict(yaml.safe_load(yaml.safe_dump(plain))) == spec
    assert spec.output_value.shape == (6, 16, 16)


def test_avg_pool_stride_defaults_to_the_kernel_and_stays_unwritten() -> None:
    spec = ModelSpec.from_dict(
        layers({"name": "pool", "kind": "avg_pool2d", "kernel": 2}, x=[3, 8, 6])
    )
    assert spec.output_value.shape == (3, 4, 3)
    (entry,) = spec.to_dict()["layers"]
    assert entry == {"name": "pool", "kind": "avg_pool2d", "input": "x", "kernel": 2, "padding": 0}
    assert ModelSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec


# -- 'same' padding -----------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,stride", [(5, 2), (4, 2), (3, 2), (2, 2), (6, 3), (3, 3), (3, 1)])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 14])
def test_conv_transpose_same_padding_multiplies_by_stride(
    kernel: int, stride: int, size: int
) -> None:
    spec = ModelSpec.from_dict(
        {
            "inputs": {"x": [3, size, size]},
            "layers": [
                {
                    "name": "up",
                    "kind": "conv_transpose2d",
                    "out": 2,
                    "kernel": kernel,
                    "stride": stride,
                    "padding": "same",
                }
            ],
        }
    )
    assert spec.output_value.shape == (2, size * stride, size * stride)
    padding, output_padding = spec.infos[0].layer.pads()
    # what PyTorch and Jittor accept: padding >= 0 and output_padding below the stride
    assert padding >= 0 and 0 <= output_padding < stride


def test_conv_transpose_same_padding_values() -> None:
    def pads(kernel: int, stride: int) -> tuple[int, int]:
        spec = ModelSpec.from_dict(
            {
                "inputs": {"x": [1, 7, 7]},
                "layers": [
                    {
                        "name": "up",
                        "kind": "conv_transpose2d",
                        "out": 1,
                        "kernel": kernel,
                        "stride": stride,
                        "padding": "same",
                    }
                ],
            }
        )
        return spec.infos[0].layer.pads()

    # k5 s2 (the dense DCGAN's): cut 2 before and 1 after, PyTorch's convention, not
    # TensorFlow's 1 before and 2 after (see ConvTranspose2d.pads); k4 s2 the classic DCGAN block.
    assert pads(5, 2) == (2, 1)
    assert pads(4, 2) == (1, 0)


# -- one clear message per mistake --------------------------------------------------------------


def spec_error(data: dict[str, Any]) -> str:
    with pytest.raises(GxError) as caught:
        ModelSpec.from_dict(data)
    message = str(caught.value)
    assert "\n" not in message, "a spec error is one line"
    return message


def layers(*entries: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    return {"inputs": inputs or {"x": [8]}, "layers": list(entries)}


BAD_SPECS = {
    "concat of different spatial sizes": (
        layers({"name": "joined", "kind": "concat", "input": ["a", "b"]}, a=[2, 4, 4], b=[3, 5, 5]),
        ["layer 'joined'", "(2, 4, 4)", "(3, 5, 5)", "Fix: resize the branches"],
    ),
    "upsample by a scale of 1": (
        layers({"name": "up", "kind": "upsample", "scale": 1}, x=[1, 4, 4]),
        ["layer 'up'", "scale must be from 2 to 32, got 1", "Fix: use e.g. scale: 2"],
    ),
    "upsample mode gx lacks": (
        layers({"name": "up", "kind": "upsample", "scale": 2, "mode": "bicubic"}, x=[1, 4, 4]),
        ["layer 'up'", "mode must be nearest or bilinear, got 'bicubic'", "Fix: write mode:"],
    ),
    "upsample of features": (
        layers({"name": "up", "kind": "upsample", "scale": 2}),
        ["layer 'up'", "upsample needs a 3-D input per sample, got shape (8,)", "Fix: reshape"],
    ),
    "pixel_shuffle of too few channels": (
        layers({"name": "shuffle", "kind": "pixel_shuffle", "factor": 2}, x=[6, 2, 2]),
        ["layer 'shuffle'", "channels divisible by 4, got 6", "Fix: give the layer before"],
    ),
    "avg_pool2d padding over half its kernel": (
        layers({"name": "pool", "kind": "avg_pool2d", "kernel": 2, "padding": 2}, x=[1, 4, 4]),
        ["layer 'pool'", "padding 2 is more than half the kernel 2", "Fix: use padding <="],
    ),
    "avg_pool2d window larger than its input": (
        layers({"name": "pool", "kind": "avg_pool2d", "kernel": 5}, x=[1, 3, 3]),
        ["layer 'pool'", "kernel 5 with padding 0 does not fit the input (1, 3, 3)"],
    ),
    "global_sum of features": (
        layers({"name": "pooled", "kind": "global_sum"}),
        ["layer 'pooled'", "global_sum needs a 3-D input", "Fix: give it images"],
    ),
    "dropout2d of features": (
        layers({"name": "drop", "kind": "dropout2d"}),
        ["layer 'drop'", "dropout2d needs a 3-D input", "Fix: give it images"],
    ),
    "multiply of a vector and images": (
        layers({"name": "product", "kind": "multiply", "input": ["a", "b"]}, a=[3], b=[3, 4, 4]),
        [
            "layer 'product'",
            "multiply needs shapes of one rank whose axes are equal or 1, got (3) and (3, 4, 4)",
            "Fix: reshape a per-channel vector (C,) to (C, 1, 1)",
        ],
    ),
    "softmax over a 2-D sample": (
        layers({"name": "probabilities", "kind": "softmax"}, x=[3, 4]),
        ["layer 'probabilities'", "softmax needs a 1-D or 3-D input", "Fix: give it features"],
    ),
    "linear fed an image": (
        layers({"name": "fc", "kind": "linear", "out": 10}, image=[1, 28, 28]),
        ["layer 'fc'", "1-D", "(1, 28, 28)", "Fix: add a 'flatten' layer before it"],
    ),
    "reshape to the wrong element count": (
        layers({"name": "grid", "kind": "reshape", "shape": [2, 7, 7]}, x=[100]),
        ["layer 'grid'", "(100,) (100 values)", "(2, 7, 7) (98 values)", "Fix: make the target"],
    ),
    "conv kernel bigger than its input": (
        layers({"name": "conv", "kind": "conv2d", "out": 4, "kernel": 5}, x=[1, 3, 3]),
        ["layer 'conv'", "kernel 5", "(1, 3, 3)", "Fix: use a smaller kernel or more padding"],
    ),
    "integer labels fed to a linear": (
        layers({"name": "fc", "kind": "linear", "out": 4}, label={"classes": 10}),
        [
            "layer 'fc'",
            "'label' holds integer labels",
            "linear",
            "Fix: turn them into numbers with one_hot, label_map or embedding",
        ],
    ),
    "unknown layer kind": (
        layers({"name": "fc", "kind": "lineer", "out": 4}),
        ["layer 'fc'", "unknown kind 'lineer'", "did you mean 'linear'?"],
    ),
    "unknown argument": (
        layers({"name": "fc", "kind": "linear", "out": 4, "outs": 5}),
        ["layer 'fc'", "linear has no argument 'outs'", "its arguments are: out, bias"],
    ),
    "missing argument": (
        layers({"name": "fc", "kind": "linear"}),
        ["layer 'fc'", "linear needs 'out'", "Fix: add out: <value>"],
    ),
    "wrong argument type": (
        layers({"name": "fc", "kind": "linear", "out": "64"}),
        ["layer 'fc'", "'out' should be int, got '64'", "Fix: fix the value of 'out'"],
    ),
    "float where a bool belongs": (
        layers({"name": "fc", "kind": "linear", "out": 4, "bias": 1}),
        ["layer 'fc'", "'bias' should be bool, got 1"],
    ),
    "duplicate layer name": (
        layers({"name": "fc", "kind": "linear", "out": 4}, {"name": "fc", "kind": "relu"}),
        ["layer 'fc'", "the name is used twice", "Fix: give every layer a unique name"],
    ),
    "layer named like an input": (
        layers({"name": "x", "kind": "relu"}),
        ["layer 'x'", "the name is used twice"],
    ),
    "input naming a later layer": (
        layers(
            {"name": "first", "kind": "relu", "input": "second"},
            {"name": "second", "kind": "relu", "input": "x"},
        ),
        [
            "layer 'first'",
            "input 'second' is not an input or an earlier layer",
            "Fix: name a model input or a layer listed before this one",
        ],
    ),
    "input naming nothing": (
        layers({"name": "act", "kind": "relu", "input": "missing"}),
        ["layer 'act'", "input 'missing' is not an input or an earlier layer"],
    ),
    "conv 'same' padding with stride 2": (
        layers(
            {
                "name": "conv",
                "kind": "conv2d",
                "out": 4,
                "kernel": 3,
                "stride": 2,
                "padding": "same",
            },
            x=[1, 8, 8],
        ),
        [
            "layer 'conv'",
            "padding 'same' on conv2d needs stride 1 and an odd kernel",
            "Fix: give an integer padding instead",
        ],
    ),
    "conv_transpose 'same' with a kernel below the stride": (
        layers(
            {
                "name": "up",
                "kind": "conv_transpose2d",
                "out": 4,
                "kernel": 1,
                "stride": 2,
                "padding": "same",
            },
            x=[1, 8, 8],
        ),
        ["layer 'up'", "padding 'same' needs kernel >= stride"],
    ),
    "conv_transpose 'same' with stride 1 and an even kernel": (
        layers(
            {
                "name": "up",
                "kind": "conv_transpose2d",
                "out": 4,
                "kernel": 4,
                "stride": 1,
                "padding": "same",
            },
            x=[1, 8, 8],
        ),
        [
            "layer 'up'",
            "padding 'same' with stride 1 needs an odd kernel",
            "Fix: use an odd kernel or integer padding",
        ],
    ),
    "concat of one input": (
        layers({"name": "joined", "kind": "concat", "input": ["x"]}),
        ["layer 'joined'", "concat needs two or more inputs"],
    ),
    "label layer fed a tensor": (
        layers({"name": "emb", "kind": "embedding", "dim": 4}, x=[3]),
        ["layer 'emb'", "embedding needs integer labels, got a tensor (3)", "classes:"],
    ),
    "dropout probability of one": (
        layers({"name": "drop", "kind": "dropout", "p": 1.0}),
        ["layer 'drop'", "p must be in [0, 1), got 1.0"],
    ),
    "group norm of groups that do not divide the channels": (
        layers({"name": "gn", "kind": "group_norm", "groups": 4}, x=[6, 3, 3]),
        ["layer 'gn'", "6 channels do not split into 4 groups", "Fix: use a number of groups"],
    ),
    "group norm without groups": (
        layers({"name": "gn", "kind": "group_norm"}, x=[6, 3, 3]),
        ["layer 'gn'", "group_norm needs 'groups'", "Fix: add groups: <value>"],
    ),
    "instance norm of features": (
        layers({"name": "inorm", "kind": "instance_norm"}),
        ["layer 'inorm'", "3-D input per sample, got shape (8,)", "for features use layer_norm"],
    ),
    "instance norm of one position": (
        layers({"name": "inorm", "kind": "instance_norm"}, x=[8, 1, 1]),
        ["layer 'inorm'", "more than one position per channel", "Fix:"],
    ),
    "layer norm with eps zero": (
        layers({"name": "ln", "kind": "layer_norm", "eps": 0}),
        ["layer 'ln'", "eps must be > 0, got 0", "Fix: use e.g. 1e-5"],
    ),
    "conditional batch norm without its labels": (
        layers({"name": "cbn", "kind": "conditional_batch_norm"}, x=[4, 2, 2]),
        ["layer 'cbn'", "conditional_batch_norm takes 2 inputs, got 1", "Fix: list them"],
    ),
    "conditional batch norm fed two tensors": (
        layers(
            {"name": "cbn", "kind": "conditional_batch_norm", "input": ["x", "y"]},
            x=[4, 2, 2],
            y=[4],
        ),  # fmt: skip
        ["layer 'cbn'", "needs integer labels, got a tensor (4)", "classes:"],
    ),
    "self-attention reducing every channel away": (
        layers({"name": "attention", "kind": "self_attention"}, x=[4, 3, 3]),
        ["layer 'attention'", "4 channels leave no channel", "reduction of at most 4"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_gives_one_message_with_layer_shapes_and_fix(case: str) -> None:
    data, fragments = BAD_SPECS[case]
    message = spec_error(data)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_spec_errors_are_spec_errors_naming_the_layer() -> None:
    with pytest.raises(SpecError) as caught:
        ModelSpec.from_dict(layers({"name": "fc", "kind": "linear", "out": 4}, image=[1, 28, 28]))
    assert caught.value.layer == "fc"


def test_bad_top_level_keys_and_inputs() -> None:
    assert "did you mean 'layers'?" in spec_error({"inputs": {"x": [3]}, "layer": []})
    assert "missing 'layers'" in spec_error({"inputs": {"x": [3]}})
    message = spec_error({"inputs": {"x": [3, 0]}, "layers": [{"kind": "relu"}]})
    assert "input 'x' must be a shape like [100, 1, 1], {classes: 10} or {uniform: [2]}" in message
    message = spec_error({"inputs": {"x": {"uniform": [0]}}, "layers": [{"kind": "relu"}]})
    assert "input 'x' must be a shape like" in message
    message = spec_error({"inputs": {"x": [3]}, "layers": [{"kind": "relu"}], "output": "nope"})
    assert "output 'nope' is not a layer name" in message
    message = spec_error({"inputs": {"train": [3]}, "layers": [{"kind": "relu"}]})
    assert "'train' cannot be a layer or input name" in message


def pair_error(generator: dict[str, Any], discriminator: dict[str, Any]) -> str:
    with pytest.raises(GxError) as caught:
        build_model("custom", generator=generator, discriminator=discriminator)
    message = str(caught.value)
    assert "\n" not in message
    return message


def mlp_generator(channels: int, conditional: bool = False) -> dict[str, Any]:
    inputs: dict[str, Any] = {"z": [16]}
    first: dict[str, Any] = {"name": "fc", "kind": "linear", "out": channels * 28 * 28}
    entries = [first]
    if conditional:
        inputs["label"] = {"classes": 10}
        entries = [
            {"name": "emb", "kind": "embedding", "input": "label", "dim": 4},
            {"name": "joined", "kind": "concat", "input": ["z", "emb"]},
            first,
        ]
    entries.append({"name": "image", "kind": "reshape", "shape": [channels, 28, 28]})
    return {"inputs": inputs, "layers": entries}


MLP_DISCRIMINATOR = {
    "inputs": {"image": [1, 28, 28]},
    "layers": [{"name": "flat", "kind": "flatten"}, {"name": "score", "kind": "linear", "out": 1}],
}


def test_pair_with_channel_mismatch_is_refused() -> None:
    message = pair_error(mlp_generator(3), MLP_DISCRIMINATOR)
    assert "the generator makes images (3, 28, 28)" in message
    assert "the discriminator reads (1, 28, 28)" in message
    assert "make the generator's last layer output (1, 28, 28)" in message


def test_pair_with_conditional_discriminator_only_is_refused() -> None:
    discriminator = {
        "inputs": {"image": [1, 28, 28], "label": {"classes": 10}},
        "layers": [
            {"name": "flat", "kind": "flatten", "input": "image"},
            {"name": "hot", "kind": "one_hot", "input": "label"},
            {"name": "joined", "kind": "concat", "input": ["flat", "hot"]},
            {"name": "score", "kind": "linear", "out": 1},
        ],
    }
    message = pair_error(mlp_generator(1), discriminator)
    assert "a discriminator that takes a 'label' input needs a generator that takes one" in message


def test_conditional_generator_may_feed_a_discriminator_without_labels() -> None:
    # AC-GAN's and InfoGAN's D read only the image and infer the class
    model = build_model(
        "custom", generator=mlp_generator(1, conditional=True), discriminator=MLP_DISCRIMINATOR
    )
    assert model.conditional and not model.discriminator_reads_labels


def test_code_inputs_are_declared_uniform_and_round_trip() -> None:
    generator = mlp_generator(1)
    generator["inputs"]["code"] = {"uniform": [2]}
    generator["layers"].insert(0, {"name": "joined", "kind": "concat", "input": ["z", "code"]})
    model = build_model("custom", generator=generator, discriminator=MLP_DISCRIMINATOR)
    assert model.codes == ("code",) and model.code_shape("code") == (2,)
    assert model.generator.inputs["code"].describe() == "(2) uniform in [-1, 1]"
    assert model.generator.to_dict()["inputs"]["code"] == {"uniform": [2]}
    again = ModelSpec.from_dict(model.generator.to_dict())
    assert again.to_dict() == model.generator.to_dict() and again.inputs["code"].uniform
    coded_discriminator = {
        "inputs": {"image": [1, 28, 28], "c": {"uniform": [2]}},
        "layers": [
            {"name": "flat", "kind": "flatten", "input": "image"},
            {"name": "score", "kind": "linear", "out": 1},
        ],
    }
    message = pair_error(mlp_generator(1), coded_discriminator)
    assert "any codes declared {uniform: [size]}, discriminator inputs image[, label]" in message


def test_pair_that_fits_builds() -> None:
    model = build_model("custom", generator=mlp_generator(1), discriminator=MLP_DISCRIMINATOR)
    assert model.image_shape == (1, 28, 28) and model.noise_shape == (16,)
    assert not model.conditional


# -- the dense DCGAN experiment -----------------------------------------------------------------


def test_dcgan_dense_experiment_shapes() -> None:
    model = model_for(load_experiment(DCGAN_DENSE))
    g_shapes = {info.name: info.output.shape for info in model.generator.infos}
    assert g_shapes["grid"] == (128, 7, 7)
    assert g_shapes["deconv3"] == (64, 14, 14)
    assert g_shapes["deconv4"] == (1, 28, 28)
    d_shapes = {info.name: info.output.shape for info in model.discriminator.infos}
    assert d_shapes["conv1"] == (64, 14, 14) and d_shapes["conv2"] == (128, 7, 7)
    assert d_shapes["flat"] == (128 * 7 * 7,)
    assert model.generator.parameter_count == (
        (100 * 1024 + 1024)
        + bn(1024)
        + (1024 * 6272 + 6272)
        + bn(6272)
        + (128 * 64 * 5 * 5 + 64)
        + bn(64)
        + (64 * 1 * 5 * 5 + 1)
    )
    assert model.discriminator.parameter_count == (
        (1 * 64 * 5 * 5 + 64) + (64 * 128 * 5 * 5 + 128) + (6272 + 1)
    )


def summary_ok_rows(output: str) -> int:
    """Rows of `gx summary --backend` whose real shape matched the spec ('ok <shape>')."""
    return sum(1 for line in output.splitlines() if "  ok " in line)


def test_dcgan_dense_summary_in_torch_is_all_ok() -> None:
    from gx.cli import main

    result = CliRunner().invoke(
        main, ["summary", str(DCGAN_DENSE), "--backend", "torch", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    model = model_for(load_experiment(DCGAN_DENSE))
    rows = sum(
        len(spec.inputs) + len(spec.nodes) for spec in (model.generator, model.discriminator)
    )
    assert summary_ok_rows(result.output) == rows == 21
    assert "MISMATCH" not in result.output
    assert "total parameters: 6,753,409" in result.output
    assert "total parameters: 212,865" in result.output
