"""scripts/gpu-check.sh runs end to end on CPU, so it is known to work before it meets a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import REPO_ROOT

# Two experiments keep the test short: the other rows run the same code with another file.
EXPERIMENTS = ["cdcgan", "gan"]
LOW_PRECISION = "gan"  # the bf16 and fp16 rows' experiment here


@pytest.mark.jittor
@pytest.mark.slow
def test_the_gpu_check_writes_its_table_on_cpu(tmp_path, mnist_root):
    out = tmp_path / "gpu-check"
    finished = subprocess.run(
        [
            "bash",
            "scripts/gpu-check.sh",
            "--device",
            "cpu",
            "--steps",
            "2",
            "--seeds",
            "1",
            "--bench-steps",
            "1",
            "--main-steps",
            "2",
            "--data-root",
            str(mnist_root),
            "--experiments",
            ",".join(EXPERIMENTS),
            "--low-precision-experiments",
            LOW_PRECISION,
            "--budget",
            "100000",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    document = json.loads((out / "gpu-check.json").read_text())
    rows = document["rows"]
    backends = ("torch", "jittor")
    low_precision = [
        (check, LOW_PRECISION, backend, precision)
        for precision in ("bf16", "fp16")
        for check, backend in [("parity", "both"), ("bench", "torch"), ("bench", "jittor")]
    ]
    assert [
        (row["check"], row["experiment"], row["backend"], row["precision"]) for row in rows
    ] == (
        [("main command", "cdcgan", "torch", "float32")]
        + [("parity", name, "both", "float32") for name in EXPERIMENTS]
        + [("bench", name, backend, "float32") for name in EXPERIMENTS for backend in backends]
        + low_precision
    )
    fp16_rows = [row for row in rows if row["precision"] == "fp16"]
    assert all(row["result"].startswith("skipped: fp16 runs on CUDA only") for row in fp16_rows)
    ran = [row for row in rows if row["precision"] != "fp16"]
    failed = [row for row in ran if row["exit"] not in (0, 1)]
    assert not failed, failed
    assert rows[0]["result"].startswith("steps: 2 ")
    parity_rows = [row for row in ran if row["check"] == "parity"]
    bench_rows = [row for row in ran if row["check"] == "bench"]
    assert len(parity_rows) == len(EXPERIMENTS) + 1 and len(bench_rows) == 2 * len(parity_rows)
    assert all(row["result"].startswith(("within", "OUTSIDE")) for row in parity_rows)
    assert all(row["train_images_per_s"] > 0 for row in bench_rows)
    assert all(row["float32_ceiling_share"] > 0 for row in bench_rows)
    bf16_bench = [row for row in bench_rows if row["precision"] == "bf16"]
    assert all(row["low_precision_ceiling_share"] > 0 for row in bf16_bench)
    assert all(row["low_precision_kernels"] in ("native", "emulated") for row in bf16_bench)
    assert document["machine"]["device"] == "cpu" and document["machine"]["jittor"]
    table = (out / "gpu-check.md").read_text().splitlines()
    assert table[0].startswith("gx GPU check: ") and len(table) == 4 + len(rows)
