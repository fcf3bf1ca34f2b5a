"""The Python API: the notebook example of the documentation (docs/python.md) runs as written,
on the functions the CLI calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import gx

import gx as gx_api
from gx.errors import GxError

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PAGE = REPO_ROOT / "docs" / "python.md"
EXPORTED = {
    "GxError",
    "RunOptions",
    "check_parity",
    "import_module",
    "evaluate_run",
    "export_generator",
    "load_experiment",
    "run_experiment",
    "sample",
    "save_strip",
    "strip_from_run",
}


def doc_snippet() -> str:
    """The one python block of the documentation's "From Python" page."""
    blocks = re.findall(r"```python\n(.*?)```", EXAMPLE_PAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, f"{EXAMPLE_PAGE} should hold exactly one python example"
    return blocks[0]


def test_import_gx_exports_the_api_and_imports_no_framework() -> None:
    code = textwrap.dedent("""
        import json, sys
        import gx
        public = sorted(name for name in dir(gx) if not name.startswith("_"))
        resolved = {name: callable(getattr(gx, name)) for name in gx.__all__}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "jittor"))
        print(json.dumps({"public": public, "all": gx.__all__, "resolved": resolved,
                          "loaded": loaded}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["all"]) == EXPORTED
    assert set(report["public"]) == EXPORTED  # dir(gx): the API and nothing else
    assert all(report["resolved"].values())
    assert report["loaded"] == []


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'train_model'"):
        gx_api.train_model  # noqa: B018  (the access is the test)


@pytest.mark.slow
def test_documented_example_runs_as_written(tmp_path, monkeypatch, data_root, classifier28):
    # The example's relative paths, as in a checkout: experiments/ here, the data beside it.
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / "experiments").symlink_to(REPO_ROOT / "experiments")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "mnist").symlink_to(data_root)
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(compile(doc_snippet(), str(EXAMPLE_PAGE), "exec"), namespace)

    result = namespace["result"]
    run = workdir / "runs" / "notebook-cdcgan"
    assert result.folder == Path("runs/notebook-cdcgan") and result.steps == 20
    # the callback saw every step, with exactly the numbers metrics.jsonl holds
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert namespace["d_losses"] == [record["d_loss"] for record in records]
    assert len(records) == 20 and np.isfinite(namespace["d_losses"]).all()

    images = namespace["images"]
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.float32
    assert -1 <= images.min() < images.max() <= 1
    # the same images gx generate writes for the same labels and seed
    code, output = gx(
        "generate",
        "--checkpoint",
        run,
        "--labels",
        "3,1,4",
        "--seed",
        "0",
        "--out",
        tmp_path / "cli.npy",
    )
    assert code == 0, output
    np.testing.assert_array_equal(np.load(tmp_path / "cli.npy"), images)

    strip = namespace["strip"]
    assert strip.digits == "13800138000" and strip.pixels.shape == (28, 11 * 28)
    with Image.open(workdir / "strip.png") as saved:
        assert saved.size == (3 * 11 * 28, 3 * 28) and saved.mode == "L"

    scores = namespace["scores"]
    assert scores["n"] == 500 and scores["step"] == 20
    assert 0 <= scores["agreement"] <= 1 and scores["frechet_distance"] > 0
    written = json.loads((run / "eval.json").read_text())
    assert written["agreement"] == scores["agreement"]
    assert written["classifier"]["held_out_accuracy"] == classifier28.info["held_out_accuracy"]


@pytest.mark.slow
def test_labels_for_an_unconditional_model_are_refused(gan_run, tmp_path):
    with pytest.raises(GxError, match="unconditional and takes no labels"):
        gx_api.sample(gan_run, labels=[1, 2])
    out = tmp_path / "x.png"
    code, output = gx("generate", "--checkpoint", gan_run, "--labels", "1", "--out", out)
    assert code == 2
    assert output.strip().splitlines() == [
        "error: model 'gan' is unconditional and takes no labels; drop --labels (use --count "
        "for the number of images)"
    ]
    assert not out.exists()


@pytest.mark.slow
def test_sample_takes_noise_arrays_and_checks_their_shape(cgan_run):
    noise = np.random.default_rng(2).standard_normal((2, 100)).astype(np.float32)
    first = gx_api.sample(cgan_run, labels=[7, 7], noise=noise)
    again = gx_api.sample(cgan_run, labels=np.array([7, 7]), noise=noise)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (2, 1, 32, 32)
    with pytest.raises(GxError, match=r"--noise has shape \(3, 100\), but 2 images"):
        gx_api.sample(cgan_run, labels=[7, 7], noise=np.zeros((3, 100), np.float32))
