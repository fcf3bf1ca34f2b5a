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
    assert [(row["check"], row["experiment"], row["backend"]) for row in rows] == (
        [("main command", "cdcgan", "torch")]
        + [("parity", name, "both") for name in EXPERIMENTS]
        + [("bench", name, backend) for name in EXPERIMENTS for backend in ("torch", "jittor")]
    )
    failed = [row for row in rows if row["exit"] not in (0, 1)]
    assert not failed, failed
    assert rows[0]["result"].startswith("steps: 2 ")
    parity_rows, bench_rows = rows[1 : 1 + len(EXPERIMENTS)], rows[1 + len(EXPERIMENTS) :]
    assert all(row["result"].startswith(("within", "OUTSIDE")) for row in parity_rows)
    assert all(row["train_images_per_s"] > 0 for row in bench_rows)
    assert document["machine"]["device"] == "cpu" and document["machine"]["jittor"]
    table = (out / "gpu-check.md").read_text().splitlines()
    assert table[0].startswith("gx GPU check: ") and len(table) == 4 + len(rows)
