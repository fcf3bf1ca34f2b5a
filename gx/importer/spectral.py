"""Layers wrapped with PyTorch's spectral normalization, read as gx's (gx.layers.dense).

``torch.nn.utils.spectral_norm`` keeps W as ``weight_orig`` and two unit vectors, ``weight_u``
and ``weight_v``. In training mode it computes what gx does: v = normalize(Wᵀu), then u =
normalize(W v), stored, and sigma = u·Wv, one power iteration with PyTorch's default eps 1e-12
(gx's max(|x|, 1e-12)). In eval mode it reads the v it stored at its last training step, where
gx derives v from u: sigma = u·W normalize(Wᵀu) = |Wᵀu|. So gx's sn_u is the module's u
scaled by (u·Wv) / |Wᵀu|: the same direction, for the same training steps, and the eval-mode
sigma PyTorch computes. Its next training step makes it the unit vector PyTorch stores.

Until its first training step the module's u and v are two unrelated random vectors, and u·Wv,
its eval-mode sigma, may be negative, which gx's |Wᵀu| cannot be. There gx takes u as it is:
training computes the same, and the import compares eval mode with v = normalize(Wᵀu), the v
that first training step computes (gx.importer.verify).

``torch.nn.utils.parametrizations.spectral_norm`` runs its power iteration the other way round,
u = normalize(W v), then v = normalize(Wᵀu), so each training step's sigma differs from gx's;
gx refuses it, and other wrappers that compute the weight (weight_norm, parametrizations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from gx.layers.importing import Unsupported

EPS = 1e-12  # gx's normalize(x) = x / max(|x|, 1e-12), PyTorch's default eps
FIX = "wrap the layer with torch.nn.utils.spectral_norm(layer), whose power iteration is gx's"


@dataclass(frozen=True)
class SpectralNormKeys:
    """Where a wrapped layer keeps W and its power-iteration vectors, as state_dict keys."""

    weight: str
    u: str
    v: str

    def under(self, path: str) -> SpectralNormKeys:
        """The keys of the layer at attribute path ``path`` in its network's state_dict."""
        return SpectralNormKeys(*(f"{path}.{key}" for key in dataclasses.astuple(self)))


def layer_class(module: nn.Module) -> type:
    """The class a layer module was built as, before a parametrization renamed it."""
    return parametrize.type_before_parametrizations(module)


def spectral_norm_keys(module: nn.Module) -> SpectralNormKeys | None:
    """The keys of ``module``'s spectral normalization (None without one); other wrappers of its
    weight, and settings gx's spectral norm lacks, are refused."""
    if parametrize.is_parametrized(module):
        raise Unsupported(_parametrization(module))
    hooks = [hook for hook in module._forward_pre_hooks.values() if isinstance(hook, SpectralNorm)]
    if any(isinstance(hook, WeightNorm) for hook in module._forward_pre_hooks.values()):
        raise Unsupported(
            "is wrapped with torch.nn.utils.weight_norm, which gx does not have; remove it, or "
            f"use spectral normalization: {FIX}"
        )
    if not hooks:
        return None
    (hook,) = hooks  # PyTorch refuses a second one on the same weight
    if hook.name != "weight" or hook.dim != 0:
        raise Unsupported(
            f"normalizes '{hook.name}' along dim {hook.dim}; gx's spectral norm normalizes "
            "'weight' as a matrix of its output rows (dim 0): use spectral_norm(layer)"
        )
    if hook.n_power_iterations != 1:
        raise Unsupported(
            f"runs {hook.n_power_iterations} power iterations per training step; gx's spectral "
            "norm runs one: use spectral_norm(layer, n_power_iterations=1)"
        )
    if hook.eps != EPS:
        raise Unsupported(
            f"normalizes with eps={hook.eps:g}; gx's spectral norm uses PyTorch's default "
            f"{EPS:g}: drop the eps argument"
        )
    return SpectralNormKeys("weight_orig", "weight_u", "weight_v")


def _parametrization(module: nn.Module) -> str:
    """Why gx refuses a parametrized layer."""
    assert isinstance(module.parametrizations, nn.ModuleDict)  # what parametrize adds
    names = {
        name: ", ".join(type(step).__name__.lstrip("_") for step in steps.children())
        for name, steps in module.parametrizations.items()
    }
    if names == {"weight": "SpectralNorm"}:
        return (
            "is wrapped with torch.nn.utils.parametrizations.spectral_norm, whose power "
            "iteration starts from v (u = normalize(W v), then v = normalize(Wᵀu)): gx's starts "
            "from u, as the paper's does, and would compute another sigma at every training "
            f"step; {FIX}"
        )
    listed = "; ".join(f"'{name}' by {steps}" for name, steps in names.items())
    return (
        f"has tensors computed by torch.nn.utils.parametrize ({listed}), which gx cannot read; "
        f"remove the parametrization (gx reads spectral normalization only: {FIX})"
    )


def _estimates(
    weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W as a matrix, PyTorch's eval-mode sigma u·Wv, gx's |Wᵀu|), in float64."""
    matrix = weight.detach().cpu().double().reshape(u.shape[0], -1)
    u, v = u.detach().cpu().double(), v.detach().cpu().double()
    return matrix, u @ matrix @ v, torch.linalg.vector_norm(matrix.t() @ u)


def gx_vector(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    """gx's sn_u for the module's W, u and v (see the module docstring)."""
    _, pytorch_sigma, gx_sigma = _estimates(weight, u, v)
    scale = pytorch_sigma / gx_sigma if pytorch_sigma > 0 else 1.0
    return (u.detach().cpu().double() * scale).to(torch.float32).numpy()


@contextmanager
def untrained_vectors_settled(
    module: nn.Module, layers: Mapping[str, SpectralNormKeys]
) -> Iterator[None]:
    """``module`` with v = normalize(Wᵀu) in each layer whose u·Wv is not positive: a spectral
    norm that has not trained yet, whose eval mode gx computes as if v were the one its first
    training step makes. Every v is restored after."""
    saved: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for keys in layers.values():
            v = module.get_buffer(keys.v)
            matrix, pytorch_sigma, _ = _estimates(
                module.get_parameter(keys.weight), module.get_buffer(keys.u), v
            )
            if pytorch_sigma <= 0:
                saved[keys.v] = v.clone()
                settled = matrix.t() @ module.get_buffer(keys.u).double()
                v.copy_(settled / torch.clamp(torch.linalg.vector_norm(settled), min=EPS))
    try:
        yield
    finally:
        with torch.no_grad():
            for key, value in saved.items():
                module.get_buffer(key).copy_(value)
