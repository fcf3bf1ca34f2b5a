"""gx's low-precision rule (gx.precision) on torch: a layer called on rounded inputs and
parameters, with its output rounded."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

LOW_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def rounded(value: torch.Tensor, low: torch.dtype) -> torch.Tensor:
    """``value`` rounded to ``low``'s precision (to nearest, ties to even), in its own dtype.

    Autograd differentiates the two casts into the rule's backward: the gradient passing back
    is rounded to ``low`` the same way.
    """
    return value.to(low).to(value.dtype)


class LowPrecisionLayer:
    """Calls ``layer`` as gx.precision defines it for bf16 and fp16.

    Emulated: the rounded values stay in the layer's dtype and its own (float32) kernels run.
    Native: the values are cast to ``low`` and the framework's bf16/fp16 kernels run; they
    accumulate in float32 and round once, so they give the same numbers up to the order of the
    float32 sums (tests/test_precision.py). Only a layer that is one product runs natively: one
    with buffers (spectral normalization's power iteration) does more with its weight than
    multiply by it, and that stays float32 as the rule says.
    """

    def __init__(
        self, layer: nn.Module, low: torch.dtype, native: bool, dtype: torch.dtype
    ) -> None:
        self.layer, self.low, self.dtype = layer, low, dtype  # dtype: the backend's own
        self.native = native and next(layer.buffers(recurse=False), None) is None
        self.parameter_names = [name for name, _ in layer.named_parameters(recurse=False)]

    def _operand(self, value: torch.Tensor) -> torch.Tensor:
        if not value.is_floating_point():  # labels pass as they are
            return value
        return value.to(self.low) if self.native else rounded(value, self.low)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        parameters = {
            name: self._operand(getattr(self.layer, name)) for name in self.parameter_names
        }
        operands = tuple(self._operand(value) for value in inputs)
        output = functional_call(self.layer, parameters, operands)
        return output.to(self.dtype) if self.native else rounded(output, self.low)
