"""gx bench: runs on both backends, reports every documented figure, refuses bad input.

Speed itself is never asserted (the figures depend on the machine); only that each figure is there,
positive and finite, and describes the run that was asked for.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gx.cli import main
from gx.models import build_model
from gx.tools.bench import RESULT_KEYS, format_report, synthetic_data

REPO_ROOT = Path(__file__).resolve().parents[1]
GAN = str(REPO_ROOT / "experiments" / "gan.yaml")
CDCGAN = str(REPO_ROOT / "experiments" / "cdcgan.yaml")
# Jittor compiles kernels per shape: the batch size of test_run.py, so they are already built.
JITTOR_BATCH = 16


def bench(*arguments: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(main, ["bench", *arguments])
    return result.exit_code, result.stdout.strip().splitlines(), result.stderr


def check_figures(
    figures: dict, backend: str, batch: int, steps: int, warmup: int, precision: str = "float32"
) -> None:
    assert set(figures) == set(RESULT_KEYS)
    assert (figures["backend"], figures["device"]) == (backend, "cpu")
    assert figures["precision"] == precision
    # the step's GFLOP/s over a 2048 x 2048 matrix product's on the same threads
    ceiling = figures["float32_ceiling_gflop_per_s"]
    assert math.isfinite(ceiling) and ceiling > 0
    assert figures["float32_ceiling_share"] == pytest.approx(figures["train_gflop_per_s"] / ceiling)
    if precision == "float32":
        assert figures["low_precision_kernels"] is None
        assert figures["low_precision_ceiling_gflop_per_s"] is None
        assert figures["low_precision_ceiling_share"] is None
    assert (figures["batch"], figures["steps"], figures["warmup"]) == (batch, steps, warmup)
    assert figures["compile"] is False
    for key in (
        "train_images_per_s",
        "train_step_ms_median",
        "generate_images_per_s",
        "generate_batch_ms_median",
        "peak_host_rss_mb",
        "train_gflop_per_s",
    ):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    # the step's arithmetic over its time: GFLOP a step x steps a second
    steps_per_s = figures["train_images_per_s"] / batch
    assert figures["train_gflop_per_s"] == pytest.approx(figures["step_gflop"] * steps_per_s)
    assert math.isfinite(figures["warmup_s"]) and figures["warmup_s"] >= 0
    assert figures["peak_device_mb"] is None  # only CUDA has a device peak
    assert figures["backend_info"]["backend"] == backend


@pytest.mark.slow
def test_torch_bench_prints_a_table_then_one_json_line():
    code, lines, stderr = bench(
        GAN,
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--batch",
        "8",
    )
    assert code == 0, stderr
    figures = json.loads(lines[-1])
    check_figures(figures, "torch", batch=8, steps=2, warmup=1)
    assert (figures["experiment"], figures["model"]) == ("gan", "gan")
    assert figures["onednn"] is None  # a Jittor setting
    table = "\n".join(lines[:-1])
    assert "torch on cpu" in table and "8 / 2 / 1" in table
    assert f"{figures['train_images_per_s']:,.1f} images/s" in table
    # the gan reference at batch 8, multiply-adds per image: G 100-128-256-512-1024-784, D
    # 784-512-256-1. G's update: G forward and backward (no gradient for the noise), D forward
    # and input gradients; D's update on real and fake images: forward and weight gradients, and
    # input gradients except for the images. Two FLOPs a multiply-add.
    g = 100 * 128 + 128 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784
    d = 784 * 512 + 512 * 256 + 256 * 1
    expected = 2 * 8 * (3 * g - 100 * 128 + 2 * d + 2 * (3 * d - 784 * 512))
    assert figures["step_gflop"] * 1e9 == pytest.approx(expected)


@pytest.mark.slow
def test_bf16_bench_reports_its_share_of_both_ceilings():
    code, lines, stderr = bench(
        GAN, "--backend", "torch", "--device", "cpu", "--steps", "2", "--warmup", "1",
        "--batch", "8", "--precision", "bf16",
    )  # fmt: skip
    assert code == 0, stderr
    figures = json.loads(lines[-1])
    check_figures(figures, "torch", batch=8, steps=2, warmup=1, precision="bf16")
    assert figures["low_precision_kernels"] in ("native", "emulated")
    assert figures["backend_info"]["precision"] == "bf16"
    ceiling = figures["low_precision_ceiling_gflop_per_s"]
    assert math.isfinite(ceiling) and ceiling > 0
    assert figures["low_precision_ceiling_share"] == pytest.approx(
        figures["train_gflop_per_s"] / ceiling
    )
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[:-1])
    assert rows["precision"] == f"bf16 ({figures['low_precision_kernels']} kernels)"
    assert rows["bf16 ceiling share"].endswith(f"of {ceiling:,.1f} GFLOP/s")


@pytest.mark.jittor
@pytest.mark.slow
def test_jittor_bench_reports_onednn():
    code, lines, stderr = bench(
        GAN,
        "--backend",
        "jittor",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--batch",
        str(JITTOR_BATCH),
    )
    assert code == 0, stderr
    figures = json.loads(lines[-1])
    check_figures(figures, "jittor", batch=JITTOR_BATCH, steps=1, warmup=1)
    assert isinstance(figures["onednn"], bool)
    assert figures["onednn"] == figures["backend_info"]["onednn"]
    assert "Jittor oneDNN" in "\n".join(lines[:-1])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--steps", "0"], "--steps"),
        (["--warmup", "-1"], "--warmup"),
        (["--batch", "0"], "--batch"),
        (["--backend", "tensorflow"], "--backend"),
        (["--backend", "jittor", "--compile"], "--compile is only offered for --backend torch"),
        (["--set", "train.epoch=3"], "did you mean 'train.epochs'"),
    ],
)
def test_bad_input_exits_2_and_names_it(arguments, message):
    code, _, stderr = bench(GAN, "--device", "cpu", *arguments)
    assert code == 2
    assert message in stderr


def test_missing_experiment_file_exits_2(tmp_path):
    code, _, stderr = bench(str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "no such experiment file" in stderr


def test_synthetic_data_looks_like_the_models_data():
    model = build_model("cdcgan")
    images, labels = synthetic_data(model, 300, seed=3)
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.float32
    assert -1 <= images.min() < -0.99 and 0.99 < images.max() <= 1
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
    again, _ = synthetic_data(model, 300, seed=3)
    assert np.array_equal(images, again)


def test_report_shows_missing_figures_as_n_a():
    figures = {
        "experiment": "gan",
        "model": "gan",
        "backend": "torch",
        "device": "cpu",
        "batch": 4,
        "steps": 2,
        "warmup": 0,
        "compile": True,
        "warmup_s": 0.0,
        "train_images_per_s": 1234.5,
        "train_step_ms_median": 3.2,
        "step_gflop": 0.5,
        "train_gflop_per_s": 156.25,
        "generate_images_per_s": 98765.4,
        "generate_batch_ms_median": 0.1,
        "peak_host_rss_mb": 300.0,
        "peak_device_mb": None,
        "onednn": None,
        "backend_info": {},
        "precision": "float32",
        "low_precision_kernels": None,
        "float32_ceiling_gflop_per_s": None,
        "float32_ceiling_share": None,
        "low_precision_ceiling_gflop_per_s": None,
        "low_precision_ceiling_share": None,
    }
    lines = format_report(figures).splitlines()
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines)
    assert rows["backend"] == "torch on cpu (torch.compile)"
    assert rows["train"].startswith("1,234.5 images/s")
    assert rows["generate"].startswith("98,765.4 images/s")
    assert rows["arithmetic"] == "0.5 GFLOP a step, 156.2 GFLOP/s"
    assert rows["peak device memory"] == "n/a"
    assert rows["Jittor oneDNN"] == "n/a"
    assert rows["precision"] == "float32"
    assert rows["float32 ceiling share"] == "n/a (no PyTorch)"
    assert "bf16 ceiling share" not in rows
