"""The import checks itself: the spec, compiled in gx's PyTorch backend with the module's
weights, must compute what the module computes, before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from gx.backends import get_backend
from gx.errors import GxError
from gx.importer.inputs import InputSpec
from gx.importer.network import ImportedNetwork, example_inputs, variadic_arguments
from gx.importer.spectral import untrained_vectors_settled

CHECK_BATCH = 4
# float32 through the same PyTorch kernels; differences are rounding in the order of 1e-7
TOLERANCE = 1e-4


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode without gradients; every submodule's own mode restored after."""
    modes = {submodule: submodule.training for submodule in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for submodule, mode in modes.items():
            submodule.training = mode


def run_original(module: nn.Module, name: str, inputs: list[InputSpec]) -> list[np.ndarray]:
    """The module's eval-mode outputs (one, or each of a tuple) on a batch of example inputs (a
    wrong --input shows here)."""
    arguments, _ = example_inputs(inputs, CHECK_BATCH)
    try:
        with eval_mode(module):
            output = module(*arguments)
    except Exception as error:  # the user's forward, on the inputs the user declared
        variadic = variadic_arguments(module)
        fix = (
            f"gx calls forward with the declared inputs only, {' and '.join(variadic)} empty: "
            "name each argument forward reads and declare it with --input"
            if variadic
            else "check the --input shapes against what forward expects"
        )
        raise GxError(
            f"{name} fails on the declared inputs ({type(error).__name__}: {error}); {fix}"
        ) from None
    outputs = list(output) if isinstance(output, (tuple, list)) else [output]
    if not outputs or not all(isinstance(value, torch.Tensor) for value in outputs):
        raise GxError(
            f"{name}.forward returns a {type(output).__name__}; a gx network returns a tensor "
            "or a tuple of tensors"
        )
    return [value.detach().cpu().numpy() for value in outputs]


def check_same_output(
    network: ImportedNetwork, module: nn.Module, expected: list[np.ndarray]
) -> None:
    """The spec compiled with the module's weights computes ``expected``, the module's eval-mode
    outputs (again with the v of spectral norms that have not trained: gx.importer.spectral)."""
    if network.spectral_norms:
        with untrained_vectors_settled(module, network.spectral_norms):
            expected = run_original(module, network.name, list(network.inputs))
    backend = get_backend("torch", "cpu")
    compiled = backend.compile(network.spec, 0)
    backend.load_weights(compiled, network.spec, network.weights(module.state_dict()))
    backend.set_training(compiled, False)
    _, gx_inputs = example_inputs(network.inputs, CHECK_BATCH)
    with torch.no_grad():
        output = compiled({key: backend.tensor(value) for key, value in gx_inputs.items()})
    outputs = output if isinstance(output, tuple) else (output,)
    for got, wanted in zip((value.numpy() for value in outputs), expected):
        if got.shape != wanted.shape:
            raise GxError(
                f"{network.name}: the imported spec makes {got.shape[1:]} per sample, the "
                f"module {wanted.shape[1:]}; this is a gx bug, please report it with the module"
            )
        scale = max(float(np.max(np.abs(wanted))), 1e-12)
        difference = float(np.max(np.abs(got - wanted)) / scale)
        if not difference <= TOLERANCE:
            raise GxError(
                f"{network.name}: the imported spec does not compute what forward computes in "
                f"eval mode (relative difference {difference:.1e}); forward likely depends on "
                "the mode in a way gx cannot express (e.g. branches on self.training)"
            )
