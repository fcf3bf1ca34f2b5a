"""``--weights``: a module's saved ``state_dict``, read without running anything from the file.

A ``.pt``/``.pth`` file is read with ``torch.load(weights_only=True)``, which refuses pickled
objects other than tensors and plain containers; a ``.safetensors`` file holds tensors only.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from gx.errors import GxError

SUFFIXES = (".pt", ".pth", ".safetensors")


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved state_dict, keyed as the module names them."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise GxError(
            f"--weights {path}: expected a {', '.join(SUFFIXES)} file holding the network's "
            "state_dict, e.g. saved with torch.save(model.state_dict(), 'G.pt')"
        )
    if not path.is_file():
        raise GxError(f"--weights {path}: no such file; check the path")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        OSError,
        RuntimeError,
        ValueError,
        EOFError,
        SafetensorError,
        pickle.UnpicklingError,
    ) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise GxError(
            f"--weights {path} cannot be read as tensors ({first_line}); save the network's "
            "state_dict with torch.save(model.state_dict(), path) or safetensors"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise GxError(
            f"--weights {path} is not a state_dict (a mapping of names to tensors); save "
            "model.state_dict(), not the model or a dict of several things"
        )
    return dict(state)


def load_state(module: nn.Module, name: str, state: Mapping[str, torch.Tensor], path: str) -> None:
    """Put ``state`` into ``module``, refusing weights saved from another network."""
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    wrong = [key for key in own if key in state and state[key].shape != own[key].shape]
    if missing or unexpected or wrong:
        if wrong:
            key = wrong[0]
            detail = f"'{key}' is {tuple(state[key].shape)}, {name} has {tuple(own[key].shape)}"
        else:
            detail = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise GxError(
            f"--weights {path} does not fit {name} ({detail}); give the weights saved from "
            "this network, built with the same --args"
        )
    module.load_state_dict(state)
