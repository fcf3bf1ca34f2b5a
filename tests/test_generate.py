"""gx generate: any backend samples any backend's checkpoint, reproducibly from a noise file."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from support import float64_images, max_difference

from gx.cli import main
from gx.parity.agreement import agrees

pytestmark = pytest.mark.cross_framework


def generate(*args: str):
    return CliRunner().invoke(main, ["generate", *args])


@pytest.mark.jittor
def test_torch_checkpoint_sampled_by_jittor_matches(cgan_run, tmp_path):
    run = cgan_run
    noise = np.random.default_rng(5).standard_normal((3, 100)).astype(np.float32)
    np.save(tmp_path / "z.npy", noise)
    outputs = {}
    for backend in ("torch", "jittor"):
        out = tmp_path / f"{backend}.npy"
        result = generate(
            "--checkpoint",
            str(run),
            "--backend",
            backend,
            "--device",
            "cpu",
            "--labels",
            "3,1,4",
            "--noise",
            str(tmp_path / "z.npy"),
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output
        outputs[backend] = np.load(out)
    assert outputs["torch"].shape == (3, 1, 32, 32)
    # one forward pass of float32 rounding, judged against PyTorch's own in the same images
    exact = float64_images(run, noise, np.array([3, 1, 4]))
    difference = max_difference(outputs["jittor"], outputs["torch"])
    floor = max_difference(outputs["torch"], exact)
    assert agrees(difference, floor), (difference, floor)


def test_png_grid_and_seed_reproducibility(cgan_run, tmp_path):
    run = cgan_run
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    for out in (first, second):
        result = generate(
            "--checkpoint",
            str(run),
            "--labels",
            "0,1,2,3,4,5,6,7,8,9,0,1",
            "--seed",
            "3",
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as grid:  # 12 images: 2 rows of 10 columns, 2 px padding
        assert grid.size == (10 * 34 + 2, 2 * 34 + 2) and grid.mode == "L"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--labels", "3,x"], "--labels must be comma-separated integers"),
        (["--labels", "12"], "labels must be in 0..9"),
        (["--labels", "1", "--out", "x.jpg"], "--out must end in .png or .npy"),
    ],
)
def test_bad_arguments(cgan_run, tmp_path, args, message):
    args = args + ([] if "--out" in args else ["--out", str(tmp_path / "x.png")])
    result = generate("--checkpoint", str(cgan_run), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_noise_file_of_wrong_shape(cgan_run, tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((2, 64), np.float32))
    result = generate(
        "--checkpoint",
        str(cgan_run),
        "--labels",
        "1,2",
        "--noise",
        str(tmp_path / "z.npy"),
        "--out",
        str(tmp_path / "x.png"),
    )
    assert result.exit_code == 2
    assert "has shape (2, 64); this generator needs (N, 100)" in result.output
    assert not (tmp_path / "x.png").exists()


def test_missing_checkpoint(tmp_path):
    result = generate("--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "does not exist" in result.output
