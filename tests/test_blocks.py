"""The ResNet block helpers of gx.models.blocks."""

from __future__ import annotations

from gx.models.blocks import (
    Entry,
    resnet_discriminator_block,
    resnet_discriminator_first_block,
    resnet_generator_block,
)


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
