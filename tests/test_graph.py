"""gx graph: the spec drawn as a graph, with no framework imported; graphviz renders it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from gx.cli import main
from gx.config import load_experiment, model_for
from gx.tools.drawing import model_dot

REPO_ROOT = Path(__file__).resolve().parents[1]
CDCGAN = REPO_ROOT / "experiments" / "cdcgan.yaml"
SVG = "{http://www.w3.org/2000/svg}"


def cdcgan():
    return model_for(load_experiment(CDCGAN))


def graph(*arguments: object):
    return CliRunner().invoke(main, ["graph", *map(str, arguments)])


def nodes_and_edges(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    nodes = dict(re.findall(r'^\s*"([^"]+)" \[label="([^"]*)"', dot, flags=re.MULTILINE))
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)";', dot, flags=re.MULTILINE)
    return nodes, edges


def test_generator_graph_shows_both_branches_joining_at_the_concat():
    model = cdcgan()
    nodes, edges = nodes_and_edges(model_dot(model, "generator"))
    spec = model.generator
    assert len(nodes) == len(spec.inputs) + len(spec.infos)
    assert nodes["generator.z"] == "z\\ninput\\n100x1x1"
    assert nodes["generator.label"] == "label\\ninput\\nlabels, 10 classes"
    assert nodes["generator.joined"] == "joined\\nconcat\\n512x4x4"
    assert nodes["generator.x_deconv"] == "x_deconv\\nconv_transpose2d\\n256x4x4\\n409,600 params"
    assert nodes["generator.image"] == "image\\ntanh\\n1x28x28"
    # the two branches: z -> ... -> x_relu and label -> ... -> y_relu, joined by the concat
    into_join = sorted(source for source, target in edges if target == "generator.joined")
    assert into_join == ["generator.x_relu", "generator.y_relu"]
    assert ("generator.label", "generator.y_onehot") in edges
    assert ("generator.z", "generator.x_deconv") in edges
    # every wire of the spec is an arrow, and the parameter counts add up to the model's
    assert len(edges) == sum(len(info.inputs) for info in spec.infos)
    counted = sum(
        int(count.replace(",", ""))
        for label in nodes.values()
        for count in re.findall(r"\\n([\d,]+) params", label)
    )
    assert counted == spec.parameter_count == 1_632_640


def test_both_networks_are_separate_clusters():
    nodes, edges = nodes_and_edges(model_dot(cdcgan(), "both"))
    assert {name.split(".")[0] for name in nodes} == {"generator", "discriminator"}
    assert "discriminator.label" in nodes and "generator.label" in nodes
    assert all(source.split(".")[0] == target.split(".")[0] for source, target in edges)


def test_svg_rendered_by_graphviz(tmp_path):
    out = tmp_path / "pictures" / "cdcgan.svg"
    result = graph(CDCGAN, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    titles = [
        node.findtext(f"{SVG}title")
        for node in ElementTree.parse(out).iter(f"{SVG}g")
        if node.get("class") == "node"
    ]
    spec = cdcgan().generator
    assert sorted(titles) == sorted(
        [f"generator.{name}" for name in spec.inputs]
        + [f"generator.{info.name}" for info in spec.infos]
    )
    assert len(titles) == 18  # z, label and 16 layers


def test_png_of_the_discriminator(tmp_path):
    out = tmp_path / "d.png"
    result = graph(CDCGAN, "--net", "discriminator", "--out", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.height > picture.width > 100


def test_without_graphviz_the_dot_file_is_written_with_how_to_render_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot program anywhere
    result = graph(CDCGAN, "--out", tmp_path / "model.png")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "model.png").exists()
    assert (tmp_path / "model.dot").read_text() == model_dot(cdcgan(), "generator")
    assert result.stdout == f"wrote {tmp_path / 'model.dot'}\n"
    assert (
        f"render the picture with: dot -Tpng {tmp_path / 'model.dot'} -o "
        f"{tmp_path / 'model.png'}" in result.stderr
    )


def test_drawing_imports_no_framework(tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        from gx.cli import main
        try:
            main(["graph", {str(CDCGAN)!r}, "--net", "both", "--out", {str(tmp_path / "g.svg")!r}])
        except SystemExit as stop:
            code = stop.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "jittor"))
        print(json.dumps({{"code": code, "loaded": loaded}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert (tmp_path / "g.svg").stat().st_size > 1000


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--net", "encoder"],
            "error: unknown net 'encoder'; use --net generator, discriminator or both",
        ),
        (["--out", "model.jpg"], "error: --out must end in .svg, .png or .dot, got 'model.jpg'"),
    ],
)
def test_mistakes_are_one_line(tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    result = graph(CDCGAN, *arguments)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_one_line_and_leaves_files_alone(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    result = graph(CDCGAN, "--out", blocker / "model.svg")  # a file where a folder should be
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write --out '{blocker}")
    assert "choose a file in a folder you can write to" in lines[0]
    assert blocker.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [blocker]
