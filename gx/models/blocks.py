"""Tiny helpers that write spec layer entries, so model files read like the reference tables."""

from __future__ import annotations

from typing import Any

Entry = dict[str, Any]


def layer(name: str, kind: str, source: str | list[str] | None = None, **arguments: Any) -> Entry:
    entry: Entry = {"name": name, "kind": kind, **arguments}
    if source is not None:
        entry["input"] = source
    return entry


def conv(
    name: str,
    out: int,
    kernel: int,
    stride: int,
    padding: int,
    bias: bool = True,
    source: str | None = None,
    spectral_norm: bool = False,
) -> Entry:
    entry = layer(
        name, "conv2d", source, out=out, kernel=kernel, stride=stride, padding=padding, bias=bias
    )
    if spectral_norm:
        entry["spectral_norm"] = True
    return entry


def deconv(
    name: str,
    out: int,
    kernel: int,
    stride: int,
    padding: int,
    bias: bool = True,
    source: str | None = None,
) -> Entry:
    return layer(
        name,
        "conv_transpose2d",
        source,
        out=out,
        kernel=kernel,
        stride=stride,
        padding=padding,
        bias=bias,
    )


def linear(name: str, out: int, source: str | None = None) -> Entry:
    return layer(name, "linear", source, out=out)


def mlp_hidden(bn_eps: float) -> list[Entry]:
    """The shared MLP trunk of cgan and gan: Linear 256/512/1024, each BatchNorm1d(eps) and
    LeakyReLU(0.2)."""
    entries: list[Entry] = []
    for index, width in enumerate((256, 512, 1024), start=2):
        entries += [
            linear(f"fc{index}", width),
            layer(f"bn{index}", "batch_norm", eps=bn_eps),
            layer(f"act{index}", "leaky_relu", slope=0.2),
        ]
    return entries


# -- ResNet blocks (SNGAN: Miyato et al., 2018; Miyato and Koyama, 2018) --------------------------
# Each returns a block's entries; the block's output is the entry named ``name`` (its ``add``).


def same_conv(
    name: str, out: int, kernel: int, source: str | None = None, spectral_norm: bool = False
) -> Entry:
    """A stride-1 convolution keeping the size (3x3 padded by 1, or 1x1), with a bias."""
    entry = layer(name, "conv2d", source, out=out, kernel=kernel, padding=kernel // 2)
    if spectral_norm:
        entry["spectral_norm"] = True
    return entry


def upsample(name: str, source: str | None = None) -> Entry:
    return layer(name, "upsample", source, scale=2, mode="nearest")


def avg_pool(name: str, source: str | None = None) -> Entry:
    return layer(name, "avg_pool2d", source, kernel=2)


def resnet_generator_block(
    name: str, source: str, out: int, label: str | None = None
) -> list[Entry]:
    """SNGAN's generator block, doubling the size: BN -> ReLU -> upsample x2 (nearest) ->
    conv3x3 -> BN -> ReLU -> conv3x3, plus the shortcut upsample x2 -> conv1x1, added.

    With a ``label`` input the two norms are class-conditional batch norm (the conditional
    generator), else batch norm.
    """

    def norm(norm_name: str, norm_source: str) -> Entry:
        if label is None:
            return layer(norm_name, "batch_norm", norm_source)
        return layer(norm_name, "conditional_batch_norm", [norm_source, label])

    return [
        norm(f"{name}_bn1", source),
        layer(f"{name}_relu1", "relu"),
        upsample(f"{name}_up"),
        same_conv(f"{name}_conv1", out, 3),
        norm(f"{name}_bn2", f"{name}_conv1"),
        layer(f"{name}_relu2", "relu"),
        same_conv(f"{name}_conv2", out, 3),
        upsample(f"{name}_shortcut_up", source),
        same_conv(f"{name}_shortcut", out, 1),
        layer(name, "add", [f"{name}_conv2", f"{name}_shortcut"]),
    ]


def resnet_discriminator_first_block(name: str, source: str, out: int) -> list[Entry]:
    """SNGAN's first discriminator block, on the image itself (no ReLU before it): conv3x3 ->
    ReLU -> conv3x3 -> avg_pool2d, plus the shortcut avg_pool2d -> conv1x1, added. Every
    convolution spectrally normalized."""
    return [
        same_conv(f"{name}_conv1", out, 3, source, spectral_norm=True),
        layer(f"{name}_relu", "relu"),
        same_conv(f"{name}_conv2", out, 3, spectral_norm=True),
        avg_pool(f"{name}_pool"),
        avg_pool(f"{name}_shortcut_pool", source),
        same_conv(f"{name}_shortcut", out, 1, spectral_norm=True),
        layer(name, "add", [f"{name}_pool", f"{name}_shortcut"]),
    ]


def resnet_discriminator_block(
    name: str, source: str, channels: int, out: int, downsample: bool
) -> list[Entry]:
    """SNGAN's discriminator block: ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avg_pool2d], plus a
    shortcut, added. The shortcut is conv1x1 [-> avg_pool2d] where the block changes the channel
    count (``channels`` in, ``out`` out) or the size; else the block's input itself. Every
    convolution spectrally normalized."""
    entries = [
        layer(f"{name}_relu1", "relu", source),
        same_conv(f"{name}_conv1", channels, 3, spectral_norm=True),
        layer(f"{name}_relu2", "relu"),
        same_conv(f"{name}_conv2", out, 3, spectral_norm=True),
    ]
    residual = f"{name}_conv2"
    if downsample:
        entries.append(avg_pool(f"{name}_pool"))
        residual = f"{name}_pool"
    shortcut = source
    if downsample or channels != out:
        entries.append(same_conv(f"{name}_shortcut", out, 1, source, spectral_norm=True))
        shortcut = f"{name}_shortcut"
        if downsample:
            entries.append(avg_pool(f"{name}_shortcut_pool"))
            shortcut = f"{name}_shortcut_pool"
    return entries + [layer(name, "add", [residual, shortcut])]
