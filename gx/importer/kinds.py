"""Which gx layer kind a traced PyTorch module, function or tensor method is: the kind whose
definition names it (``Layer.torch_modules`` / ``Layer.torch_functions`` in gx.layers), whose own
rule then reads its settings (``from_torch_module``) or its call (``from_torch_call``).

Where none does, the refusal names the nearest kinds gx has, read from the same definitions:
for a module, the kinds whose modules live in the same file of torch.nn (nn.ELU, in
activation.py: relu, leaky_relu, tanh, sigmoid); for a function, the kinds whose name or
functions' names are closest to its name (F.elu: relu).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from torch import nn

from gx.importer.spectral import layer_class
from gx.layers import LAYER_KINDS
from gx.layers.importing import Unsupported
from gx.values import close_matches

LayerArguments = tuple[str, dict[str, Any]]
_METHOD = "Tensor."
# files of torch.nn.modules whose layers do the job of another file's
_RELATED_FILES = {"instancenorm": "batchnorm", "normalization": "batchnorm"}


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


def module_layer(module: nn.Module) -> LayerArguments:
    """The gx layer kind and arguments of a leaf module."""
    cls = layer_class(module)
    kind = MODULE_KINDS.get(cls)
    if kind is None:
        raise Unsupported(f"has no gx layer kind; {module_suggestion(cls)}")
    return kind, LAYER_KINDS[kind].from_torch_module(module)


def module_suggestion(cls: type) -> str:
    """The nearest kinds gx has for the nn.Module class ``cls``, most alike first."""
    near: dict[str, list[str]] = {}
    for module_class, kind in MODULE_KINDS.items():
        if _file(module_class) == _file(cls):
            near.setdefault(kind, []).append(f"nn.{module_class.__name__}")
    if not near:
        every = ", ".join(f"nn.{module_class.__name__}" for module_class in MODULE_KINDS)
        return f"gx imports {every} and nn.Identity"
    ranked = sorted(near, key=lambda kind: -_likeness(cls.__name__, kind))
    return "the nearest gx has: " + ", ".join(f"{k} ({', '.join(near[k])})" for k in ranked)


def call_suggestion(name: str) -> str:
    """The nearest kinds gx has for a function or tensor method called ``name``."""
    aliases = {
        kind: [kind, *(path.rsplit(".", 1)[-1] for path in cls.torch_functions)]
        for kind, cls in LAYER_KINDS.items()
    }
    close = set(close_matches(name, [alias for names in aliases.values() for alias in names]))
    kinds = [kind for kind, names in aliases.items() if close & set(names)]
    if not kinds:
        return (
            f"gx's layer kinds are {', '.join(LAYER_KINDS)} (docs/layers.md lists the PyTorch "
            "modules and functions each is read from)"
        )
    kinds.sort(key=lambda kind: -max(_likeness(name, alias) for alias in aliases[kind]))
    return "the nearest gx has: " + ", ".join(f"{kind} ({_sources(kind)})" for kind in kinds)


def _file(cls: type) -> str:
    """The file of torch.nn.modules that defines ``cls`` ('activation' for nn.ELU)."""
    name = cls.__module__.rsplit(".", 1)[-1]
    return _RELATED_FILES.get(name, name)


def _sources(kind: str) -> str:
    """How user code writes a kind: nn.ReLU, F.relu, torch.relu, Tensor.relu."""
    definition = LAYER_KINDS[kind]
    written = [
        f"F.{path.rsplit('.', 1)[-1]}" if path.startswith("torch.nn.functional.") else
        f"nn.{path.rsplit('.', 1)[-1]}" if path.startswith("torch.nn.") else path
        for path in (*definition.torch_modules, *definition.torch_functions)
    ]  # fmt: skip
    return ", ".join(written) or definition.imported_by


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()
