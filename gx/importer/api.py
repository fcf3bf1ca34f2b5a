"""The import itself: declared inputs checked, forward traced and translated, the spec checked
against the module (see gx.importer)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from gx.errors import GxError
from gx.importer.inputs import Declaration, input_specs
from gx.importer.network import ImportedNetwork, example_inputs, unset_arguments
from gx.importer.tracing import trace
from gx.importer.translate import Translator
from gx.importer.verify import check_same_output, run_original
from gx.spec.graph import valid_name

# the batch of the examples that decide branches on static properties (gx.importer.static):
# two samples, as training-mode batch norm needs more than one value per channel
EXAMPLE_BATCH = 2


def import_network(
    module: nn.Module, inputs: Mapping[str, Declaration], name: str | None = None
) -> ImportedNetwork:
    """``module`` (on the CPU) as a gx spec, with the map from gx's weight names to its own.

    ``inputs``: one entry per argument of forward, in its order, e.g. ``{"z": "100",
    "label": "class:10"}`` (gx.importer.inputs lists the declarations).
    """
    name = name or type(module).__name__
    declared = input_specs(inputs)
    for item in declared:
        if not valid_name(item.name):
            raise GxError(
                f"input name '{item.name}' cannot name a gx input; use letters, digits and "
                "underscores, starting with a letter (a GAN's are z, label and image)"
            )
    defaults = unset_arguments(module, name, declared)
    expected = run_original(module, name, declared)
    examples, _ = example_inputs(declared, EXAMPLE_BATCH)
    graph = trace(module, name, True, defaults, examples)
    translator = Translator(name, module, trace(module, name, False, defaults, examples))
    spec = translator.translate(graph, declared)
    network = ImportedNetwork(
        name,
        spec,
        tuple(declared),
        translator.weight_keys,
        sum(parameter.numel() for parameter in module.parameters()),
        translator.spectral_norms,
    )
    check_same_output(network, module, expected)
    return network
