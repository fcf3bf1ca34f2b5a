"""``gx graph``: an experiment's networks drawn as a graph, from the spec alone (no framework).

Every input and layer is one box: name, kind, output shape and, where it has any, its parameter
count. Arrows follow the wiring, so branches (a label branch beside the noise branch) and the
concat where they join are visible; joins are drawn in a colour of their own. Graphviz's ``dot``
turns the DOT text into SVG or PNG; without it gx writes the .dot file and says how to render it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gx.errors import GxError
from gx.models import GanModel
from gx.outputs import written_atomically
from gx.spec import ModelSpec, shape_text

NETS = ("generator", "discriminator", "both")
RENDERED = (".svg", ".png")
DOT_PROGRAM = "dot"
INSTALL_HINT = "apt install graphviz (Debian/Ubuntu) or see graphviz.org"

_INPUT_STYLE = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'
_LAYER_STYLE = 'shape=box, style="filled", fillcolor="#f4f4f4"'
_JOIN_STYLE = 'shape=box, style="filled,bold", fillcolor="#ffd966"'
_OUTPUT_STYLE = 'shape=box, style="filled", fillcolor="#d9ead3", peripheries=2'


def check_net(net: str) -> None:
    if net not in NETS:
        raise GxError(f"unknown net '{net}'; use --net generator, discriminator or both")


def _quote(text: str) -> str:
    """A DOT string; a newline becomes DOT's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _input_label(spec: ModelSpec, name: str) -> str:
    value = spec.inputs[name]
    what = f"labels, {value.classes} classes" if value.is_label else shape_text(value.shape)
    return f"{name}\ninput\n{what}"


def spec_lines(spec: ModelSpec, network: str) -> list[str]:
    """DOT statements for one network, as a cluster; node ids are prefixed by ``network``."""
    lines = [
        f"subgraph {_quote('cluster_' + network)} {{",
        f"  label={_quote(f'{network} ({spec.parameter_count:,} parameters)')};",
    ]
    for name in spec.inputs:
        lines.append(
            f"  {_quote(f'{network}.{name}')} [label={_quote(_input_label(spec, name))},"
            f" {_INPUT_STYLE}];"
        )
    for info in spec.infos:
        label = f"{info.name}\n{info.kind}\n{shape_text(info.output.shape)}"
        if info.parameter_count:
            label += f"\n{info.parameter_count:,} params"
        style = (
            _OUTPUT_STYLE
            if info.name in spec.outputs
            else _JOIN_STYLE
            if len(info.inputs) > 1
            else _LAYER_STYLE
        )
        lines.append(f"  {_quote(f'{network}.{info.name}')} [label={_quote(label)}, {style}];")
        for source in info.inputs:
            edge = f"{_quote(f'{network}.{source}')} -> {_quote(f'{network}.{info.name}')}"
            lines.append(f"  {edge};")
    return lines + ["}"]


def model_dot(model: GanModel, net: str = "generator") -> str:
    """The DOT text of the generator, the discriminator or both (side by side)."""
    check_net(net)
    chosen = ("generator", "discriminator") if net == "both" else (net,)
    lines = [
        f"digraph {_quote(model.name)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        f"  label={_quote(f'{model.name}: {net}')}; labelloc=t;",
    ]
    for network in chosen:
        lines += ["  " + line for line in spec_lines(getattr(model, network), network)]
    return "\n".join(lines + ["}"]) + "\n"


@dataclass
class GraphFile:
    path: Path  # what was written: the picture, or the .dot file when dot is missing
    render_command: str = ""  # when a picture was asked for and dot is missing: how to make it


def _render(dot_text: str, program: str, out: Path) -> None:
    with written_atomically(out) as staging:
        result = subprocess.run(
            [program, f"-T{out.suffix[1:]}", "-o", str(staging)],
            input=dot_text,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise GxError(
                f"graphviz's dot could not render '{out}' ({reason}); write the .dot "
                "file instead with --out model.dot"
            )


def write_graph(model: GanModel, net: str, out: str | Path) -> GraphFile:
    """Write the graph to ``out`` (.svg, .png or .dot); see GraphFile for what was written."""
    out = Path(out)
    check_net(net)
    if out.suffix not in RENDERED + (".dot",):
        raise GxError(f"--out must end in .svg, .png or .dot, got '{out}'")
    dot_text = model_dot(model, net)
    program = shutil.which(DOT_PROGRAM)
    if out.suffix in RENDERED and program is not None:
        _render(dot_text, program, out)
        return GraphFile(out)
    dot_path = out.with_suffix(".dot")
    with written_atomically(dot_path) as staging:
        staging.write_text(dot_text)
    if out.suffix == ".dot":
        return GraphFile(dot_path)
    return GraphFile(dot_path, f"dot -T{out.suffix[1:]} {dot_path} -o {out}")
