"""The ResNet block helpers of gx.models.blocks, and the SNGAN experiment written with them."""

from __future__ import annotations

from pathlib import Path

import yaml

from gx.config import load_experiment, model_for
from gx.models.blocks import (
    Entry,
    layer,
    resnet_discriminator_block,
    resnet_discriminator_first_block,
    resnet_generator_block,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SNGAN = REPO_ROOT / "experiments" / "sngan_projection.yaml"


def by_name(entries: list[Entry]) -> dict[str, Entry]:
    return {entry["name"]: entry for entry in entries}


def test_generator_block_upsamples_both_paths_and_conditions_its_norms_on_the_label():
    block = by_name(resnet_generator_block("up1", "grid", 64, label="label"))
    assert block["up1"] == {"name": "up1", "kind": "add", "input": ["up1_conv2", "up1_shortcut"]}
    assert block["up1_bn1"]["input"] == ["grid", "label"]
    assert block["up1_bn2"]["input"] == ["up1_conv1", "label"]
    assert block["up1_bn1"]["kind"] == block["up1_bn2"]["kind"] == "conditional_batch_norm"
    for upsample in ("up1_up", "up1_shortcut_up"):
        assert block[upsample]["kind"] == "upsample"
        assert (block[upsample]["scale"], block[upsample]["mode"]) == (2, "nearest")
    assert block["up1_shortcut_up"]["input"] == "grid"
    assert [block[f"up1_{conv}"]["kernel"] for conv in ("conv1", "conv2", "shortcut")] == [3, 3, 1]
    unconditional = by_name(resnet_generator_block("up1", "grid", 64))
    assert unconditional["up1_bn1"] == {"name": "up1_bn1", "kind": "batch_norm", "input": "grid"}


def test_discriminator_blocks_pool_where_asked_and_learn_a_shortcut_only_where_needed():
    first = by_name(resnet_discriminator_first_block("down1", "image", 32))
    # the first block pools the image before its 1x1 shortcut; no ReLU before its first conv
    assert first["down1_shortcut_pool"] == {
        "name": "down1_shortcut_pool", "kind": "avg_pool2d", "input": "image", "kernel": 2
    }  # fmt: skip
    assert first["down1_conv1"]["input"] == "image"
    assert first["down1"]["input"] == ["down1_pool", "down1_shortcut"]

    down = by_name(resnet_discriminator_block("down2", "down1", 32, 32, downsample=True))
    assert down["down2_relu1"]["input"] == "down1"
    assert down["down2_shortcut"]["input"] == "down1" and down["down2_shortcut"]["kernel"] == 1
    assert down["down2"]["input"] == ["down2_pool", "down2_shortcut_pool"]

    same = by_name(resnet_discriminator_block("block3", "down2", 32, 32, downsample=False))
    assert same["block3"]["input"] == ["block3_conv2", "down2"]  # the identity shortcut
    assert not any("shortcut" in name or "pool" in name for name in same)
    wider = by_name(resnet_discriminator_block("block3", "down2", 32, 64, downsample=False))
    assert wider["block3"]["input"] == ["block3_conv2", "block3_shortcut"]

    for block in (first, down, same, wider):
        convolutions = [entry for entry in block.values() if entry["kind"] == "conv2d"]
        assert convolutions and all(entry["spectral_norm"] for entry in convolutions)


def test_sngan_projection_experiment_is_the_resnet_blocks_written_out():
    experiment = yaml.safe_load(SNGAN.read_text())
    generator = [
        layer("fc", "linear", "z", out=4 * 4 * 256),
        layer("grid", "reshape", shape=[256, 4, 4]),
    ]
    source = "grid"
    for index in (1, 2, 3):
        generator += resnet_generator_block(f"up{index}", source, 256, label="label")
        source = f"up{index}"
    generator += [
        layer("bn", "batch_norm", source),
        layer("relu", "relu"),
        layer("conv", "conv2d", out=1, kernel=3, padding=1),
        layer("image", "tanh"),
    ]
    discriminator = [
        *resnet_discriminator_first_block("down1", "image", 128),
        *resnet_discriminator_block("down2", "down1", 128, 128, downsample=True),
        *resnet_discriminator_block("block3", "down2", 128, 128, downsample=False),
        *resnet_discriminator_block("block4", "block3", 128, 128, downsample=False),
        layer("relu", "relu"),
        layer("features", "global_sum"),
        layer("score", "linear", out=1, spectral_norm=True),
        layer("class_term", "projection", ["features", "label"]),
        layer("logit", "add", ["score", "class_term"]),
    ]
    model = experiment["model"]
    assert model["generator"]["layers"] == generator
    assert model["discriminator"]["layers"] == discriminator
    assert model["generator"]["inputs"] == {"z": [128], "label": {"classes": 10}}
    assert model["discriminator"]["inputs"] == {"image": [1, 32, 32], "label": {"classes": 10}}
    # SNGAN's recipe: the hinge loss, Adam(2e-4, betas 0 and 0.9), G on every 5th batch
    train, optimizer = experiment["train"], experiment["optimizer"]
    assert (train["loss"], train["d_steps"], experiment["data"]["image_size"]) == ("hinge", 5, 32)
    for network in ("generator", "discriminator"):
        assert optimizer[network] == {"kind": "adam", "lr": 0.0002, "betas": [0.0, 0.9]}


def test_sngan_projection_networks_are_32x32_with_raw_scores():
    model = model_for(load_experiment(SNGAN))
    generator, discriminator = model.generator, model.discriminator
    made = {info.name: info.output.shape for info in generator.infos}
    assert [made[f"up{index}"] for index in (1, 2, 3)] == [
        (256, 8, 8),
        (256, 16, 16),
        (256, 32, 32),
    ]
    assert generator.output_value.shape == model.image_shape == (1, 32, 32)
    read = {info.name: info.output.shape for info in discriminator.infos}
    assert (read["down1"], read["down2"], read["features"]) == ((128, 16, 16), (128, 8, 8), (128,))
    assert discriminator.output_value.shape == (1,) and model.classes == 10
    assert discriminator.infos[-1].kind == "add"  # raw scores, no sigmoid, for the hinge loss
    assert sum(info.parameter_count for info in generator.infos) == 4_299_777
    assert sum(info.parameter_count for info in discriminator.infos) == 1_052_545
