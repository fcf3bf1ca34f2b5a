"""Mixed precision (``train.precision``): gx's one rule for which operations run in a
low-precision format, the same on both backends.

- ``float32`` (the default): everything in float32, exactly as without this setting.
- ``bf16`` and ``fp16``: every layer whose kind does matrix-product work (``Layer.flops`` > 0:
  linear, conv2d, conv_transpose2d and any later kind that counts FLOPs) takes its float inputs
  and its parameters rounded to the format, computes from them in float32 (the product of two
  bf16 or fp16 values is exact in float32, so this is "low-precision operands, float32
  accumulation"), and its output is rounded to the format. Each rounding is to nearest, ties to
  even. In the backward pass every one of those roundings rounds the gradient that passes back
  through it the same way: the gradient arriving at the layer's output, and the gradients the
  layer sends to its inputs and parameters.
- Everything else (batch norm, activations, embeddings, the losses, the optimizer) computes in
  float32 on float32 values. Master weights, optimizer state, batch-norm statistics, the losses
  and checkpoints stay float32, so any run continues in any precision on either backend.

The values between layers stay float32 tensors that hold bf16/fp16 numbers, so the definition
does not depend on which kernels compute it. A backend computes a low-precision layer either
with the framework's own bf16/fp16 kernels ("native", where the hardware has them: fast) or
with its float32 kernels on the rounded values ("emulated": the same numbers up to the order of
float32 summation, slower than float32 because of the roundings). fp16 also scales the losses
(gx.train.loss_scale) and runs on CUDA only. docs/semantics.md states the rule,
tests/test_semantics.py pins it against numpy, docs/mixed-precision.md has the measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gx.errors import GxError
from gx.machine import cpu_flags

if TYPE_CHECKING:
    from gx.spec.graph import LayerInfo

FLOAT32 = "float32"
LOW_PRECISIONS = ("bf16", "fp16")
PRECISIONS = (FLOAT32, *LOW_PRECISIONS)
# Half an ulp of 1, relative: the closest a rounded result is promised to its exact value
# (bf16 keeps 8 significant bits, fp16 11, float32 24).
UNIT_ROUNDOFFS = {FLOAT32: 2.0**-24, "bf16": 2.0**-8, "fp16": 2.0**-11}
# The CPU flags of bf16 arithmetic units (Linux's names): AVX512-BF16 (Cooper Lake, Zen 4 and
# later) and AMX (Sapphire Rapids and later). Without them bf16 kernels convert in software.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise GxError(f"unknown precision '{precision}'; use one of: {', '.join(PRECISIONS)}")


def check_device(precision: str, device: str) -> None:
    """Refuse a precision the device cannot run fast: fp16 needs a GPU."""
    if precision == "fp16" and device != "cuda":
        raise GxError(
            "train.precision fp16 runs on CUDA GPUs only (CPUs have no fast float16 "
            "arithmetic); use --set train.precision=bf16 on a CPU, or --device cuda"
        )


def in_low_precision(info: LayerInfo) -> bool:
    """Whether ``info``'s layer computes from rounded operands under bf16 and fp16: the layers
    whose kind counts matrix-product FLOPs."""
    return info.layer.flops(info) > 0


def in_format(values: np.ndarray, precision: str) -> bool:
    """Whether every float32 value is a number of ``precision``'s format (what a layer that
    follows the rule outputs): bf16 numbers are float32s whose lower 16 bits are zero."""
    values = np.asarray(values, np.float32)
    if precision == "bf16":
        return bool(np.all((values.view(np.uint32) & 0xFFFF) == 0))
    if precision == "fp16":
        with np.errstate(over="ignore"):
            return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values))
    return True


def bf16_cpu_flags() -> list[str]:
    """This CPU's bf16 arithmetic flags (empty: bf16 is converted in software here)."""
    flags = set(cpu_flags())
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]
