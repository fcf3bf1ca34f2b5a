"""gx export: the generator as ONNX, checked with onnxruntime against gx generate.

A checkpoint of either backend exports (through PyTorch) to the same graph; onnxruntime must
reproduce ``gx generate`` (which samples with the backend that trained the run) on the same
noise and labels to within float32 rounding: within the floor of those images, PyTorch float32's
own distance from PyTorch float64 (gx.parity.agreement).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from support import REPO_ROOT, float64_images, gx, max_difference
from tiny import gx_subprocess

from gx.config import load_experiment
from gx.parity.agreement import agrees
from gx.tools.export import OPSET
from gx.train.run import RunOptions, run_experiment

pytestmark = pytest.mark.cross_framework


@pytest.fixture(scope="module")
def jittor_cdcgan_run(tmp_path_factory, data_root) -> Path:
    folder = tmp_path_factory.mktemp("jittor-cdcgan") / "run"
    experiment = load_experiment(
        REPO_ROOT / "experiments" / "cdcgan.yaml",
        ["data.split=test", "train.max_steps=2", "train.batch_size=16"],
    )
    run_experiment(
        experiment,
        RunOptions(
            backend="jittor",
            device="cpu",
            data_root=str(data_root),
            out=str(folder),
            progress=False,
        ),
    )
    return folder


def onnx_inputs(path: Path) -> dict[str, tuple[int, list]]:
    """name -> (ONNX element type, dims with symbolic names for dynamic ones)."""
    graph = onnx.load(str(path)).graph
    return {
        value.name: (
            value.type.tensor_type.elem_type,
            [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim],
        )
        for value in graph.input
    }


def export_and_compare(run: Path, folder: Path, labels: list[int] | None) -> tuple[float, float]:
    """onnxruntime's images against gx generate's on PyTorch (what gx export traces), and the
    floor: PyTorch float32's own distance from float64 on the same noise and labels."""
    out = folder / "generator.onnx"
    code, output = gx("export", "--checkpoint", run, "--out", out)
    assert code == 0, output
    assert f"(ONNX opset {OPSET})" in output
    noise = np.random.default_rng(11).standard_normal((7, 100, 1, 1) if labels else (7, 100))
    noise = noise.astype(np.float32)
    np.save(folder / "z.npy", noise)
    arguments = ["--labels", ",".join(map(str, labels))] if labels else ["--count", "7"]
    code, output = gx(
        "generate",
        "--checkpoint",
        run,
        "--noise",
        folder / "z.npy",
        *arguments,
        "--backend",
        "torch",
        "--out",
        folder / "gx.npy",
    )
    assert code == 0, output
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feeds = {"z": noise}
    if labels:
        feeds["label"] = np.array(labels, np.int64)
    (images,) = session.run(["image"], feeds)
    expected = np.load(folder / "gx.npy")
    assert images.shape == expected.shape
    exact = float64_images(run, noise, np.array(labels) if labels else None)
    return max_difference(images, expected), max_difference(expected, exact)


@pytest.mark.parametrize("backend", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)])
@pytest.mark.slow
def test_cdcgan_onnx_matches_gx_generate(backend, cdcgan_run, request, tmp_path):
    run = cdcgan_run if backend == "torch" else request.getfixturevalue("jittor_cdcgan_run")
    difference, floor = export_and_compare(run, tmp_path, [3, 1, 4, 1, 5, 9, 2])
    assert agrees(difference, floor), (difference, floor)
    model = onnx.load(str(tmp_path / "generator.onnx"))
    assert [(entry.domain, entry.version) for entry in model.opset_import] == [("", OPSET)]
    assert onnx_inputs(tmp_path / "generator.onnx") == {
        "z": (onnx.TensorProto.FLOAT, ["batch", 100, 1, 1]),
        "label": (onnx.TensorProto.INT64, ["batch"]),
    }
    assert [output.name for output in model.graph.output] == ["image"]


def test_unconditional_generator_has_only_z(gan_run, tmp_path):
    difference, floor = export_and_compare(gan_run, tmp_path, None)
    assert agrees(difference, floor), (difference, floor)
    assert onnx_inputs(tmp_path / "generator.onnx") == {
        "z": (onnx.TensorProto.FLOAT, ["batch", 100])
    }


@pytest.mark.slow
def test_export_reports_its_own_check(cdcgan_run, tmp_path):
    code, output = gx("export", "--checkpoint", cdcgan_run, "--out", tmp_path / "g.onnx")
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == (
        f"wrote {tmp_path / 'g.onnx'} (ONNX opset 17); inputs: z tensor(float) "
        "['batch', 100, 1, 1], label tensor(int64) ['batch']"
    )
    check = re.fullmatch(
        r"onnxruntime vs gx on 5 images: max abs difference (\S+) "
        r"\(float32's rounding floor (\S+): agrees\)",
        lines[1],
    )
    assert check, lines[1]
    reported, floor = float(check[1]), float(check[2])
    # the floor is rounding: not 0 (a float64 run that never happened), not a different result
    assert agrees(reported, floor) and 0 < floor < 1e-5


@pytest.mark.parametrize(
    "out, message",
    [
        ("generator.pt", "error: --out must end in .onnx, got '{folder}/generator.pt'"),
        (
            "notes.txt/generator.onnx",
            "error: cannot write --out '{folder}/notes.txt/generator.onnx'",
        ),
    ],
)
def test_bad_output_is_one_line_and_leaves_files_alone(cdcgan_run, tmp_path, out, message):
    (tmp_path / "notes.txt").write_text("keep me")
    code, output = gx("export", "--checkpoint", cdcgan_run, "--out", tmp_path / out)
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(folder=tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])
@pytest.mark.slow
def test_missing_extra_is_one_line(cdcgan_run, tmp_path, missing):
    out = tmp_path / "generator.onnx"
    result = gx_subprocess(
        ["export", "--checkpoint", cdcgan_run, "--out", out], tmp_path, [missing]
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: gx export needs {missing}, which is not installed; install it with: "
        "pip install 'gx[onnx]'   (or: pip install onnx onnxruntime)"
    ]
    assert not out.exists()


def test_without_torch_export_names_what_to_install(cdcgan_run, tmp_path):
    """Export traces the generator in PyTorch: a Jittor-only install gets one line saying so."""
    out = tmp_path / "generator.onnx"
    result = gx_subprocess(
        ["export", "--checkpoint", cdcgan_run, "--out", out], tmp_path, ["torch"]
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: the torch backend needs torch, which is not installed; "
        "install it with: pip install torch"
    )
    assert not out.exists()
