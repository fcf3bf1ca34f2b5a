"""gx run on bad input: one clear message, exit status 2, and no run folder touched.

Also a diverging run: it stops at the step whose loss is not finite, exits with 1, and leaves a
checkpoint whose numbers are all finite.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gx.checkpoint import load_checkpoint
from gx.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH = 16
SETTINGS = ["data.split=test", f"train.batch_size={BATCH}"]
EXISTING = Path("runs") / "cdcgan-existing"  # relative to the working folder of every case


def experiment_path(name: str) -> Path:
    return REPO_ROOT / "experiments" / f"{name}.yaml"


def run_arguments(name: str, mnist_root: Path, *extra: str) -> list[str]:
    arguments = [
        "run",
        str(experiment_path(name)),
        "--device",
        "cpu",
        "--data-root",
        str(mnist_root),
    ]
    for setting in SETTINGS:
        arguments += ["--set", setting]
    return arguments + list(extra)


def invoke(arguments: list[str]):
    return CliRunner().invoke(main, arguments, catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, cdcgan_run) -> Path:
    """A working folder holding one finished cdcgan run (torch, 2 steps) under runs/."""
    folder = tmp_path_factory.mktemp("workspace")
    shutil.copytree(cdcgan_run, folder / EXISTING)
    return folder


@pytest.fixture
def untouched(workspace, monkeypatch):
    """Run a case inside the workspace, then check that not one byte in it changed."""
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    assert len(before) > 10  # config, metrics, samples, checkpoint, ...
    yield workspace
    assert snapshot(workspace) == before


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    """Custom experiments whose networks cannot be built, and a file with an unknown key."""
    folder = tmp_path_factory.mktemp("specs")
    good = textwrap.dedent("""\
        name: tiny
        model:
          name: custom
          generator:
            inputs: {z: [16]}
            layers:
              - {name: fc, kind: linear, out: 784}
              - {name: grid, kind: reshape, shape: [1, 28, 28]}
              - {name: image, kind: tanh}
          discriminator:
            inputs: {image: [1, 28, 28]}
            layers:
              - {name: conv1, kind: conv2d, out: 8, kernel: 3, stride: 1, padding: 0}
              - {name: flat, kind: flatten}
              - {name: score, kind: linear, out: 1}
              - {name: probability, kind: sigmoid}
        """)
    bad = {
        "kernel": good.replace("kernel: 3", "kernel: 32"),
        "reshape": good.replace("out: 784", "out: 700"),
        "mismatch": good.replace("shape: [1, 28, 28]", "shape: [1, 14, 56]"),
        "unknown_key": experiment_path("cdcgan")
        .read_text()
        .replace("  batch_size: 64", "  batch_sise: 64"),
    }
    assert all(text != good for text in bad.values()) and "batch_sise" in bad["unknown_key"]
    for name, text in bad.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


# Each case: extra arguments (placeholders: {existing}, {empty}) and the parts its one message
# must contain.
CASES = {
    "unknown key": (
        ["--set", "train.batchsize=16"],
        ["unknown key 'train.batchsize'; did you mean 'train.batch_size'?"],
    ),
    "wrong type": (
        ["--set", "train.batch_size=abc"],
        ["'train.batch_size' must be an integer, got 'abc' (str)"],
    ),
    "lr zero": (
        ["--set", "optimizer.generator.lr=0"],
        ["'optimizer.generator.lr' must be > 0, got 0.0"],
    ),
    "lr negative": (
        ["--set", "optimizer.discriminator.lr=-1e-3"],
        ["'optimizer.discriminator.lr' must be > 0, got -0.001"],
    ),
    "batch size zero": (
        ["--set", "train.batch_size=0"],
        ["'train.batch_size' must be >= 1, got 0"],
    ),
    "batch larger than data": (
        ["--set", "train.batch_size=20000"],
        ["batch size 20000 is larger than the dataset", "only 10000 images", "at most 10000"],
    ),
    "negative epochs": (["--set", "train.epochs=-1"], ["'train.epochs' must be >= 0, got -1"]),
    "unknown precision": (
        ["--set", "train.precision=fp8"],
        ["'train.precision' must be one of float32, bf16, fp16, got 'fp8'"],
    ),
    "fp16 on a cpu": (
        ["--set", "train.precision=fp16"],
        [
            "train.precision fp16 runs on CUDA GPUs only",
            "use --set train.precision=bf16 on a CPU, or --device cuda",
        ],
    ),
    "image size": (
        ["--set", "data.image_size=32"],
        [
            "model 'cdcgan' works on 28x28 images but data.image_size is 32",
            "--set data.image_size=28",
        ],
    ),
    "missing dataset": (
        ["--data-root", "{empty}", "--set", "data.download=false"],
        [
            "missing t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in {empty}",
            "downloading is off",
            "--data-root",
        ],
    ),
    "out not empty": (
        ["--out", "{existing}"],
        ["output folder '{existing}' already exists and is not empty", "--resume"],
    ),
    "out and resume": (
        ["--out", "elsewhere", "--resume", "{existing}"],
        ["--out and --resume cannot be combined"],
    ),
    "resume missing": (["--resume", "runs/nothing"], ["checkpoint 'runs/nothing' does not exist"]),
    "resume other model": (
        ["--set", "model.options.noise_dim=50", "--resume", "{existing}"],
        ["run '{existing}' was trained with a different model than 'cdcgan' now describes"],
    ),
    "resume other settings": (
        ["--set", "optimizer.generator.lr=1e-3", "--resume", "{existing}"],
        [
            "run '{existing}' was trained with optimizer.generator.lr=0.0004, "
            "not 0.001; a resumed run must keep its settings (only "
            "data.download, data.root, train.checkpoint_every"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.slow
def test_bad_input_gives_one_message_and_exit_2(untouched, mnist_root, tmp_path, case):
    extra, expected = CASES[case]
    fill = {"existing": str(EXISTING), "empty": str(tmp_path)}
    result = invoke(
        run_arguments(
            "cdcgan",
            mnist_root,
            "--backend",
            "torch",
            *(argument.format(**fill) for argument in extra),
        )
    )
    assert_one_error(result, [part.format(**fill) for part in expected])


def assert_one_error(result, expected: list[str]) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in expected:
        assert part in lines[0]


def test_resume_with_another_experiment(untouched, mnist_root):
    result = invoke(run_arguments("gan", mnist_root, "--resume", str(EXISTING)))
    assert_one_error(
        result,
        [
            f"run '{EXISTING}' belongs to experiment 'cdcgan', not 'gan'",
            "resume it with its own experiment file",
        ],
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("kernel", ["layer 'conv1': kernel 32 with padding 0 does not fit the input (1, 28, 28)"]),
        ("reshape", ["layer 'grid': cannot reshape (700,)", "(1, 28, 28) (784 values)"]),
        (
            "mismatch",
            ["the generator makes images (1, 14, 56) but the discriminator reads (1, 28, 28)"],
        ),
        ("unknown_key", ["unknown key 'train.batch_sise'; did you mean 'train.batch_size'?"]),
    ],
)
def test_bad_experiment_file(untouched, mnist_root, specs, name, expected):
    path = specs / f"{name}.yaml"
    result = invoke(["run", str(path), "--data-root", str(mnist_root), "--device", "cpu"])
    assert_one_error(result, expected)
    if name == "unknown_key":
        assert str(path) in result.stderr


def test_unknown_backend_is_a_usage_error(untouched, mnist_root):
    result = invoke(run_arguments("cdcgan", mnist_root, "--backend", "tensorflow"))
    assert result.exit_code == 2
    assert "Invalid value for '--backend': 'tensorflow' is not one of 'torch', 'jittor'" in (
        result.stderr
    )


@pytest.mark.parametrize("backend", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)])
def test_cuda_on_a_machine_without_gpu(untouched, mnist_root, monkeypatch, backend):
    # Pretend there is no GPU, so the case holds on any machine.
    import torch

    from gx.backends.jittor import environment

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(environment, "cuda_runtime_present", lambda: False)
    result = invoke(run_arguments("cdcgan", mnist_root, "--backend", backend, "--device", "cuda"))
    assert_one_error(
        result, [f"--device cuda was asked for, but {backend} sees no CUDA GPU", "use --device cpu"]
    )


@pytest.mark.slow
def test_backend_that_is_not_installed(untouched, mnist_root):
    # A fresh interpreter in which 'import jittor' fails, as when it is not installed.
    program = (
        "import sys; sys.modules['jittor'] = None; "
        "from gx.backends import available; "
        "print('jittor available:', available('jittor'), available('torch')); "
        "from gx.cli import main; sys.exit(main())"
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            *run_arguments("cdcgan", mnist_root, "--backend", "jittor"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == "jittor available: False True\n"
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(
        "error: the jittor backend needs jittor, which is not installed; "
        "install it with: pip install 'jittor"
    )


# --- a diverging run ---------------------------------------------------------------------------

HUGE_SGD = [
    "optimizer.generator.kind=sgd",
    "optimizer.discriminator.kind=sgd",
    "optimizer.generator.lr=1e30",
    "optimizer.discriminator.lr=1e30",
]


@pytest.mark.parametrize("backend", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)])
@pytest.mark.slow
def test_non_finite_loss_stops_with_a_finite_checkpoint(tmp_path, mnist_root, backend):
    folder = tmp_path / "diverged"
    arguments = run_arguments(
        "cgan", mnist_root, "--backend", backend, "--max-steps", "20", "--out", str(folder)
    )
    for setting in HUGE_SGD:
        arguments += ["--set", setting]
    result = invoke(arguments)
    assert result.exit_code == 1, result.output
    match = re.fullmatch(
        r"error: the (generator|discriminator) loss became (nan|inf|-inf) at "
        r"step (\d+); lower the learning rate or check the data; the checkpoint "
        r"holds step (\d+), the last finite state saved\n",
        result.stderr,
    )
    assert match, result.stderr
    failed, kept = int(match[3]), int(match[4])
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, failed))
    assert failed < 20 and kept < failed
    checkpoint = load_checkpoint(folder)
    assert checkpoint.state["step"] == kept
    for part in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
        arrays = getattr(checkpoint, part)
        assert arrays and all(np.isfinite(array).all() for array in arrays.values()), part
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["stopped"] == "non-finite loss" and summary["steps"] == failed - 1
    assert f"at step {failed}" in summary["message"]
