"""``gx import``: a hand-written PyTorch network as a gx spec.

PyTorch's own tracer (torch.fx), running forward on example inputs as it records it
(gx.importer.static), records what forward does; each recorded operation becomes the gx layer
that computes exactly the same (gx.importer.kinds, gx.importer.operations), named after the
module's attribute path. What gx cannot express is one ``GxError`` naming the operation, the
module, the source line and the nearest thing gx has. The result is checked against the module
itself before it is returned (gx.importer.verify).

This package imports torch only when a function is called, so that ``import gx`` stays free
of frameworks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from gx.importer.inputs import Declaration
    from gx.importer.network import ImportedNetwork
    from gx.spec import ModelSpec

__all__ = ["import_module", "import_network"]


def import_network(
    module: nn.Module, inputs: Mapping[str, Declaration], name: str | None = None
) -> ImportedNetwork:
    """``module`` (on the CPU) as a gx spec, with the map from gx's weight names to its own.

    ``inputs``: one entry per argument of forward, in its order, e.g. ``{"z": "100",
    "label": "class:10"}`` (gx.importer.inputs lists the declarations).
    """
    from gx.importer.api import import_network as imported

    return imported(module, inputs, name)


def import_module(module: nn.Module, inputs: Mapping[str, Declaration]) -> ModelSpec:
    """``gx import`` from Python: the spec of ``module``, e.g.
    ``gx.import_module(Generator(), {"z": "100", "label": "class:10"})``."""
    return import_network(module, inputs).spec
