"""``gx summary``: the layer table of an experiment's networks, from the spec alone or checked
against a compiled backend module."""

from __future__ import annotations

from dataclasses import dataclass

from gx.backends.base import Backend
from gx.models import GanModel
from gx.spec import ModelSpec, example_inputs, shape_text


@dataclass
class Row:
    name: str
    kind: str
    spec_shape: tuple[int, ...]
    parameters: int
    backend_shape: tuple[int, ...] | None = None


def layer_rows(spec: ModelSpec, backend: Backend | None = None) -> list[Row]:
    rows = [Row(name, "input", value.shape, 0) for name, value in spec.inputs.items()]
    rows += [
        Row(info.name, info.kind, info.output.shape, info.parameter_count) for info in spec.infos
    ]
    if backend is not None:
        module = backend.compile(spec, 0)
        inputs = {key: backend.tensor(value) for key, value in example_inputs(spec, 2).items()}
        with backend.no_grad():
            outputs = module(inputs, keep_all=True)
        for row in rows:
            row.backend_shape = tuple(outputs[row.name].shape)[1:]
    return rows


def format_table(title: str, rows: list[Row], backend_name: str | None) -> tuple[str, int]:
    """The printed table, and how many layers' backend shapes disagree with the spec."""
    header = ["layer", "kind", "output", "params"] + ([backend_name] if backend_name else [])
    body, mismatches = [], 0
    for row in rows:
        cells = [row.name, row.kind, shape_text(row.spec_shape), f"{row.parameters:,}"]
        if backend_name:
            same = row.backend_shape == row.spec_shape
            mismatches += not same
            cells.append(("ok " if same else "MISMATCH ") + shape_text(row.backend_shape))
        body.append(cells)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = [
        title,
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in body]
    lines.append(f"total parameters: {sum(r.parameters for r in rows):,}")
    return "\n".join(lines), mismatches


def summarize(model: GanModel, backend: Backend | None = None) -> tuple[str, int]:
    texts, mismatches = [], 0
    for title, spec in (("generator", model.generator), ("discriminator", model.discriminator)):
        if len(spec.outputs) > 1:
            title += f" (outputs: {', '.join(spec.outputs)})"
        text, bad = format_table(
            f"{model.name} {title}", layer_rows(spec, backend), backend.name if backend else None
        )
        texts.append(text)
        mismatches += bad
    return "\n\n".join(texts), mismatches
