"""The torch half of ``gx export``: trace a compiled generator into an ONNX file.

PyTorch's TorchScript-based exporter (``dynamo=False``) is used on purpose: it needs only torch,
while the torch.export-based default of PyTorch >= 2.9 also needs onnxscript. The traced graph
is the same plain Conv/Gemm/BatchNormalization/Gather graph either way for these networks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gx.backends.torch.backend import TorchBackend, TorchModel


class _PositionalInputs(nn.Module):
    """The spec's dict-of-inputs module as f(z, label): ONNX inputs are positional."""

    def __init__(self, model: TorchModel, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *values: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, values)))


def export_onnx(
    backend: TorchBackend,
    model: TorchModel,
    example: Mapping[str, np.ndarray],
    output_name: str,
    path: str | Path,
    opset: int,
) -> None:
    """Write ``model`` (eval mode) to ``path``; all inputs and the output get a dynamic batch."""
    names = list(example)
    wrapper = _PositionalInputs(model, names).eval()
    arguments = tuple(backend.tensor(example[name]) for name in names)
    batch_axis = {name: {0: "batch"} for name in names + [output_name]}
    with warnings.catch_warnings():
        # the deprecation notice of the TorchScript exporter, chosen on purpose (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            arguments,
            str(path),
            input_names=names,
            output_names=[output_name],
            opset_version=opset,
            dynamic_axes=batch_axis,
            dynamo=False,
        )
