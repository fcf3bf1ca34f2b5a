"""gx's low-precision rule (gx.precision) on Jittor: a layer called on rounded inputs and
parameters, with its output rounded, all on Jittor's float32 kernels (emulated).

Jittor's own conversion to bfloat16 truncates on the CPU (it keeps the upper 16 bits) and
rounds to nearest on CUDA, and its CPU bf16 kernels run far slower than its float32 ones
(docs/mixed-precision.md), so gx rounds to bf16 itself, with one small kernel for both devices.
Jittor's conversion to float16 rounds to nearest, ties to even, on both (its own code, pinned
by tests/test_semantics.py), so fp16 uses it.
"""

from __future__ import annotations

from typing import Any, Callable

import jittor as jt

# Round to nearest, ties to even, on the bits: add 0x7fff plus the lowest kept bit, then clear
# the 16 dropped bits. A carry into the exponent is the correct next power of two (or inf past
# the largest bf16); NaN is returned as it is.
_BF16_BITS = """
    if ((bits & 0x7fffffffu) <= 0x7f800000u) {
        bits += 0x7fffu + ((bits >> 16) & 1u);
        bits &= 0xffff0000u;
    }
"""
_CPU_HEADER = f"""
#include <cstdint>
#include <cstring>
inline float gx_round_bf16(float value) {{
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    {_BF16_BITS}
    std::memcpy(&value, &bits, sizeof bits);
    return value;
}}
"""
_CPU_SOURCE = """
for (int64_t i = 0; i < in0_shape0; i++) @out(i) = gx_round_bf16(@in0(i));
"""
_CUDA_HEADER = f"""
__device__ inline float gx_round_bf16(float value) {{
    unsigned int bits = __float_as_uint(value);
    {_BF16_BITS}
    return __uint_as_float(bits);
}}
"""
_CUDA_SOURCE = """
__global__ static void gx_round_bf16_kernel(@ARGS_DEF) {
    @PRECALC
    int64_t stride = (int64_t)blockDim.x * gridDim.x;
    for (int64_t i = threadIdx.x + (int64_t)blockIdx.x * blockDim.x; i < in0_shape0; i += stride)
        @out(i) = gx_round_bf16(@in0(i));
}
gx_round_bf16_kernel<<<(in0_shape0 - 1) / 1024 + 1, 1024>>>(@ARGS);
"""


def _bf16_values(value: jt.Var) -> jt.Var:
    flat = value.reshape(-1)
    rounded = jt.code(
        flat.shape,
        flat.dtype,
        [flat],
        cpu_header=_CPU_HEADER,
        cpu_src=_CPU_SOURCE,
        cuda_header=_CUDA_HEADER,
        cuda_src=_CUDA_SOURCE,
    )
    return rounded.reshape(value.shape)


class _RoundToBf16(jt.Function):
    """Forward: the value rounded to bf16; backward: the gradient rounded the same way."""

    def execute(self, value: jt.Var) -> jt.Var:
        return _bf16_values(value)

    def grad(self, gradient: jt.Var) -> jt.Var:
        return _bf16_values(gradient)


def _round_to_bf16(value: jt.Var) -> jt.Var:
    return _RoundToBf16()(value)


def _round_to_fp16(value: jt.Var) -> jt.Var:
    # Jittor differentiates a cast by casting the gradient back: the backward rounds too
    return value.float16().float32()


ROUNDINGS: dict[str, Callable[[jt.Var], jt.Var]] = {
    "bf16": _round_to_bf16,
    "fp16": _round_to_fp16,
}


class LowPrecisionLayer:
    """Calls ``layer`` as gx.precision defines it: on rounded float inputs, with its trainable
    parameters replaced by rounded copies for the call (their gradients pass back through the
    rounding to the float32 parameters), and its output rounded."""

    def __init__(self, layer: jt.Module, precision: str) -> None:
        self.layer, self.rounding = layer, ROUNDINGS[precision]
        self.parameter_names = [
            name
            for name, value in vars(layer).items()
            if isinstance(value, jt.Var) and not value.is_stop_grad()  # not the buffers
        ]

    def __call__(self, *inputs: jt.Var) -> Any:
        layer = self.layer
        parameters = {name: getattr(layer, name) for name in self.parameter_names}
        try:
            for name, value in parameters.items():
                setattr(layer, name, self.rounding(value))
            output = layer(
                *(self.rounding(value) if value.dtype.is_float() else value for value in inputs)
            )
        finally:
            for name, value in parameters.items():
                setattr(layer, name, value)
        return self.rounding(output)
