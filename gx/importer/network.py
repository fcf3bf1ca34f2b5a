"""An imported network: its spec, where its weights come from in the module, and the inputs
that run both side by side."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gx.errors import GxError
from gx.importer.inputs import InputSpec, one_hot_code
from gx.importer.spectral import SpectralNormKeys, gx_vector
from gx.spec import ModelSpec


@dataclass(frozen=True)
class ImportedNetwork:
    name: str  # what the user called it: the class or object name
    spec: ModelSpec
    inputs: tuple[InputSpec, ...]
    weight_keys: dict[str, str]  # gx 'layer.param' -> the module's state_dict key
    module_parameters: int  # trainable values the module holds (gx summary counts the spec's)
    # gx layer -> the state_dict keys of its spectral normalization in the module
    spectral_norms: dict[str, SpectralNormKeys] = field(default_factory=dict)

    def weights(self, state: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Copies of the module's ``state_dict()`` tensors (or of one read from a file), keyed
        as gx keys them: later updates of the module (running statistics) leave them alone.
        A spectral norm's u is scaled as gx.importer.spectral explains."""
        arrays = {
            key: state[source].detach().cpu().to(torch.float32).numpy().copy()
            for key, source in self.weight_keys.items()
        }
        for layer, keys in self.spectral_norms.items():
            arrays[f"{layer}.sn_u"] = gx_vector(state[keys.weight], state[keys.u], state[keys.v])
        return arrays


def example_inputs(
    inputs: tuple[InputSpec, ...] | list[InputSpec], count: int, seed: int = 0
) -> tuple[list[torch.Tensor], dict[str, np.ndarray]]:
    """Random inputs of one batch, twice: the module's forward arguments (one-hot codes where
    declared so), and gx's inputs (the labels those codes encode)."""
    rng = np.random.default_rng(seed)
    arguments: list[torch.Tensor] = []
    gx_inputs: dict[str, np.ndarray] = {}
    for declared in inputs:
        if declared.is_float:
            shape = (count, *declared.shape)
            values = (
                rng.uniform(-1, 1, shape).astype(np.float32)
                if declared.kind == "uniform"
                else rng.standard_normal(shape, dtype=np.float32)
            )
            arguments.append(torch.from_numpy(values))
            gx_inputs[declared.name] = values
            continue
        labels = rng.integers(0, declared.classes, count)
        gx_inputs[declared.name] = labels
        code = labels if declared.kind == "class" else one_hot_code(labels, declared.shape)
        arguments.append(torch.from_numpy(code))
    return arguments, gx_inputs


def unset_arguments(module: nn.Module, name: str, inputs: list[InputSpec]) -> dict[str, object]:
    """forward's arguments after the declared ones, each at its default (what tracing binds):
    ``*args`` and ``**kwargs`` stay empty, as gx calls forward with the declared inputs only.

    Inputs bind to forward's positional arguments in order; a name that is another argument's is
    the sign of a mix-up, refused rather than bound by position.
    """
    parameters = list(inspect.signature(module.forward).parameters.values())
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    wanted = f"one --input per argument of {name}.forward ({', '.join(named)}), in that order"
    if len(inputs) > len(named):
        variadic = next((p.name for p in parameters if p.kind is p.VAR_POSITIONAL), None)
        if variadic is not None:
            raise GxError(
                f"{len(inputs)} inputs declared, but {name}.forward names {len(named)} "
                f"({', '.join(named)}) and takes the rest through *{variadic}, which gx leaves "
                "empty; name each argument forward reads, e.g. def forward(self, z, label)"
            )
        raise GxError(f"{len(inputs)} inputs declared; give {wanted}")
    for position, declared in enumerate(inputs):
        if declared.name in named and named.index(declared.name) != position:
            raise GxError(
                f"input '{declared.name}' is declared at position {position + 1} but is "
                f"argument {named.index(declared.name) + 1} of {name}.forward; give {wanted}"
            )
    rest = [p for p in parameters if p.name not in named[: len(inputs)]]
    missing = [
        p.name
        for p in rest
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if missing:
        raise GxError(f"no input declared for '{missing[0]}'; give {wanted}")
    return {_traced_name(p): _unset_value(p) for p in rest}


def variadic_arguments(module: nn.Module) -> list[str]:
    """forward's ``*args`` and ``**kwargs``, as the source writes them (gx leaves them empty)."""
    parameters = inspect.signature(module.forward).parameters.values()
    return [_traced_name(p) for p in parameters if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _traced_name(parameter: inspect.Parameter) -> str:
    """The name torch.fx gives an argument: ``*args`` and ``**kwargs`` keep their stars."""
    if parameter.kind is parameter.VAR_POSITIONAL:
        return f"*{parameter.name}"
    if parameter.kind is parameter.VAR_KEYWORD:
        return f"**{parameter.name}"
    return parameter.name


def _unset_value(parameter: inspect.Parameter) -> object:
    if parameter.kind is parameter.VAR_POSITIONAL:
        return ()
    if parameter.kind is parameter.VAR_KEYWORD:
        return {}
    return parameter.default
