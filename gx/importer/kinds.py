"""Which gx layer kind a traced PyTorch module, function or tensor method is: the kind whose
definition names it (``Layer.torch_modules`` / ``Layer.torch_functions`` in gx.layers), whose own
rule then reads its settings (``from_torch_module``) or its call (``from_torch_call``)."""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from gx.layers import LAYER_KINDS
from gx.layers.importing import Unsupported

LayerArguments = tuple[str, dict[str, Any]]
_METHOD = "Tensor."


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# Exact types: a subclass may override forward, and fx traces through it instead.
MODULE_KINDS: dict[type, str] = {
    _resolve(path): kind for kind, cls in LAYER_KINDS.items() for path in cls.torch_modules
}
FUNCTION_KINDS: dict[Any, str] = {
    _resolve(path): kind
    for kind, cls in LAYER_KINDS.items()
    for path in cls.torch_functions
    if not path.startswith(_METHOD)
}
METHOD_KINDS: dict[str, str] = {
    path.removeprefix(_METHOD): kind
    for kind, cls in LAYER_KINDS.items()
    for path in cls.torch_functions
    if path.startswith(_METHOD)
}
SUPPORTED_MODULES = ", ".join(f"nn.{cls.__name__}" for cls in MODULE_KINDS)


def module_layer(module: nn.Module) -> LayerArguments:
    """The gx layer kind and arguments of a leaf module."""
    kind = MODULE_KINDS.get(type(module))
    if kind is None:
        raise Unsupported(f"has no gx layer kind; gx imports {SUPPORTED_MODULES} and nn.Identity")
    return kind, LAYER_KINDS[kind].from_torch_module(module)
