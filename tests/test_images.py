"""gx.images: pixel conversion, grid layout, GIFs and loss plots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gx.errors import GxError
from gx.images import image_grid, plot_losses, save_gif, save_grid, to_uint8

REPO_ROOT = Path(__file__).resolve().parents[1]


def _constant_images(values: list[float], channels: int = 1, size: int = 28) -> np.ndarray:
    """One image per value, every pixel of it equal to that value (in [-1, 1])."""
    return np.stack([np.full((channels, size, size), value, dtype=np.float32) for value in values])


def test_to_uint8_maps_range_and_layout():
    images = np.array([-1.0, 0.0, 1.0, -2.0, 3.0, np.nan], dtype=np.float32).reshape(1, 1, 2, 3)
    pixels = to_uint8(images)
    assert pixels.shape == (1, 2, 3, 1) and pixels.dtype == np.uint8
    assert pixels[0, :, :, 0].tolist() == [[0, 128, 255], [0, 255, 0]]


def test_to_uint8_moves_channels_last():
    images = np.zeros((2, 3, 4, 5), dtype=np.float32)
    images[:, 2] = 1.0  # blue channel full
    pixels = to_uint8(images)
    assert pixels.shape == (2, 4, 5, 3)
    assert (pixels[..., 2] == 255).all() and (pixels[..., :2] == 128).all()


def test_grid_size_matches_make_grid():
    grid = image_grid(_constant_images([1.0] * 100), rows=10, cols=10)
    assert grid.size == (302, 302) and grid.mode == "L"
    wide = image_grid(_constant_images([1.0] * 6, size=32), rows=2, cols=3, padding=4)
    assert wide.size == (3 * 36 + 4, 2 * 36 + 4)


def test_grid_pixels_at_known_positions():
    # 2 x 3 grid of 4 images: white, black, white, grey; two cells stay blank (pad value 50).
    grid = np.asarray(
        image_grid(
            _constant_images([1.0, -1.0, 1.0, 0.0], size=4), rows=2, cols=3, padding=1, pad_value=50
        )
    )
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)
    assert grid[0].tolist() == [50] * 16  # top padding
    assert grid[1, 1:5].tolist() == [255] * 4 and grid[1, 5] == 50  # tile 0 then a gap
    assert grid[1:5, 6:10].max() == 0  # tile 1 (row 0, col 1) is black
    assert grid[1:5, 11:15].min() == 255  # tile 2 (row 0, col 2)
    assert (grid[6:10, 1:5] == 128).all()  # tile 3 starts row 1
    assert (grid[6:10, 6:15] == 50).all()  # blank cells
    assert grid[:, 0].tolist() == [50] * 11 and grid[-1].tolist() == [50] * 16


def test_grid_rgb():
    images = np.zeros((1, 3, 2, 2), dtype=np.float32) - 1.0
    images[0, 0] = 1.0  # red
    grid = image_grid(images, rows=1, cols=1, padding=0)
    assert grid.mode == "RGB" and grid.getpixel((1, 1)) == (255, 0, 0)


def test_grid_rejects_bad_inputs():
    with pytest.raises(GxError, match="5 images do not fit a 2 x 2 grid"):
        image_grid(_constant_images([0.0] * 5), rows=2, cols=2)
    with pytest.raises(GxError, match="2 channels"):
        image_grid(np.zeros((1, 2, 4, 4)), rows=1, cols=1)
    with pytest.raises(GxError, match=r"\(N, C, H, W\)"):
        image_grid(np.zeros((4, 4)), rows=1, cols=1)


def test_save_grid_scales_with_nearest_neighbour(tmp_path):
    path = tmp_path / "samples" / "grid.png"
    save_grid(_constant_images([1.0, -1.0]), path, rows=1, cols=2, scale=3)
    with Image.open(path) as saved:
        assert saved.size == (3 * (2 * 30 + 2), 3 * 32)
        pixels = np.asarray(saved)
    assert set(np.unique(pixels)) == {0, 255}  # no interpolated greys
    assert pixels[6:90, 6:90].min() == 255 and pixels[6:90, 96:180].max() == 0


def test_save_grid_rejects_bad_scale(tmp_path):
    with pytest.raises(GxError, match="scale"):
        save_grid(_constant_images([0.0]), tmp_path / "grid.png", rows=1, cols=1, scale=0)


def test_gif_frames_and_loop(tmp_path):
    frame_paths = []
    for index in range(3):
        frame_paths.append(tmp_path / f"frame{index}.png")
        save_grid(_constant_images([index / 2 - 0.5] * 4), frame_paths[-1], rows=2, cols=2)
    extra = image_grid(_constant_images([1.0] * 4), rows=2, cols=2)
    gif = tmp_path / "progress.gif"
    save_gif([*frame_paths, extra], gif, duration_ms=150)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4
        assert animation.info["loop"] == 0
        assert animation.info["duration"] == 150


def test_gif_without_frames(tmp_path):
    with pytest.raises(GxError, match="no frames"):
        save_gif([], tmp_path / "empty.gif")


@pytest.mark.parametrize("with_outputs", [True, False])
def test_plot_losses_writes_png(tmp_path, with_outputs):
    records = [
        {"step": step, "d_loss": 1.0 / (step + 1), "g_loss": 0.5 + step / 10} for step in range(20)
    ]
    if with_outputs:
        for record in records:
            record.update(d_real=0.8, d_fake=0.3)
    path = tmp_path / "plots" / "losses.png"
    plot_losses(records, path)
    with Image.open(path) as plot:
        assert plot.format == "PNG"
        assert plot.size == (800, 700 if with_outputs else 400)


@pytest.mark.slow
def test_plot_losses_never_imports_pyplot(tmp_path):
    # In a fresh interpreter: pyplot would pick a (possibly GUI) backend and hold global state.
    target = str(tmp_path / "l.png")
    script = (
        "import sys; from gx.images import plot_losses; "
        f"plot_losses([{{'step': 0, 'd_loss': 1.0, 'g_loss': 1.0}}], {target!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO_ROOT)
    assert (tmp_path / "l.png").is_file()


def test_plot_losses_without_records(tmp_path):
    with pytest.raises(GxError, match="no loss records"):
        plot_losses([], tmp_path / "losses.png")
