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
