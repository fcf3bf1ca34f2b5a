"""``gx import FILE.py:NAME``: load the network, import it, write the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gx.errors import GxError
from gx.importer.api import import_network
from gx.importer.files import SPEC_SUFFIXES, write_import_folder, write_spec_file
from gx.importer.inputs import parse_input
from gx.importer.loading import load_network
from gx.importer.network import ImportedNetwork
from gx.importer.weights import load_state, read_state


@dataclass
class ImportResult:
    network: ImportedNetwork
    written: list[Path]
    notes: list[str]


def import_file(
    target: str,
    inputs: Sequence[str],
    out: str,
    weights: str | None = None,
    arguments: str | None = None,
) -> ImportResult:
    """Everything ``gx import`` does; nothing is written unless all of it succeeds."""
    declarations: dict[str, str] = {}
    for item in inputs:
        name, declaration = parse_input(item)
        if name in declarations:
            raise GxError(f"--input '{name}' is given twice; declare each input once")
        declarations[name] = declaration
    module, name = load_network(target, arguments)
    if weights is not None:
        load_state(module, name, read_state(weights), weights)
    network = import_network(module, declarations, name)
    gx_weights = network.weights(module.state_dict()) if weights is not None else None
    source = f"{target}" + (f" with weights {weights}" if weights else "")
    out_path = Path(out)
    if out_path.suffix in SPEC_SUFFIXES:
        return ImportResult(
            network, write_spec_file(out_path, network.spec, source, gx_weights), []
        )
    written, notes = write_import_folder(out_path, network.spec, source, gx_weights)
    return ImportResult(network, written, notes)
