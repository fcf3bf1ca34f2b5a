"""Turn generated images into files: grids, animated GIFs, and loss plots.

Backend-neutral: takes numpy arrays in the models' layout, (N, C, H, W) with values in [-1, 1].
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from gx.errors import GxError
from gx.outputs import replace_file

Frame = Union[Image.Image, str, Path]

# Pillow >= 9.1 moved the filters into Image.Resampling and (until 10) warned on the old names.
_NEAREST = getattr(Image, "Resampling", Image).NEAREST


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1], (N, C, H, W), as uint8 pixels (N, H, W, C)."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise GxError(
            f"expected images shaped (N, C, H, W), got shape {images.shape}. Fix: pass a "
            "batch of images, e.g. images[None] for a single one"
        )
    # A diverged generator produces NaN; show it as black instead of undefined cast results.
    images = np.nan_to_num(images, nan=-1.0)
    pixels = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return pixels.transpose(0, 2, 3, 1)


def image_grid(
    images: np.ndarray, rows: int, cols: int, padding: int = 2, pad_value: int = 0
) -> Image.Image:
    """A rows x cols grid of images with `padding` pixels between and around the tiles.

    Same layout as torchvision.utils.make_grid: rows * (H + padding) + padding pixels tall.
    Grayscale ('L') for one channel, RGB for three; cells beyond the last image stay pad_value.
    """
    pixels = to_uint8(images)
    count, height, width, channels = pixels.shape
    _check_grid(count, channels, rows, cols, padding, pad_value)
    step_y, step_x = height + padding, width + padding
    canvas = np.full(
        (rows * step_y + padding, cols * step_x + padding, channels), pad_value, dtype=np.uint8
    )
    for index, tile in enumerate(pixels):
        top = padding + (index // cols) * step_y
        left = padding + (index % cols) * step_x
        canvas[top : top + height, left : left + width] = tile
    # 2-D uint8 becomes an 'L' image, H x W x 3 an 'RGB' one.
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def _check_grid(
    count: int, channels: int, rows: int, cols: int, padding: int, pad_value: int
) -> None:
    if channels not in (1, 3):
        raise GxError(
            f"images have {channels} channels; a grid needs 1 (grayscale) or 3 (RGB). "
            "Fix: pass images shaped (N, 1, H, W) or (N, 3, H, W)"
        )
    if rows < 1 or cols < 1 or count > rows * cols:
        raise GxError(
            f"{count} images do not fit a {rows} x {cols} grid. Fix: use at least one "
            "row and column and no more images than rows * cols"
        )
    if padding < 0 or not 0 <= pad_value <= 255:
        raise GxError(
            f"padding {padding} and pad value {pad_value} are out of range. Fix: use "
            "padding >= 0 and a pad value from 0 to 255"
        )


def save_grid(images: np.ndarray, path: str | Path, rows: int, cols: int, scale: int = 1) -> None:
    """Write image_grid(images, rows, cols) to path, enlarged `scale` times (nearest neighbour)."""
    if not isinstance(scale, int) or scale < 1:
        raise GxError(f"grid scale {scale!r} must be a whole number >= 1. Fix: use e.g. scale=2")
    grid = image_grid(images, rows, cols)
    if scale > 1:
        # Nearest neighbour keeps the pixels sharp; small digits are meant to be seen as pixels.
        grid = grid.resize((grid.width * scale, grid.height * scale), _NEAREST)
    _save(grid, path)


def save_gif(frames: Sequence[Frame], path: str | Path, duration_ms: int = 200) -> None:
    """An animated GIF of frames (images or image files) that loops forever."""
    if not frames:
        raise GxError(f"no frames to write to {path}. Fix: pass at least one image")
    images = [_as_image(frame) for frame in frames]
    # loop=0 is GIF for "repeat forever".
    _save(images[0], path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def _as_image(frame: Frame) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame
    with Image.open(frame) as image:
        return image.copy()  # copy loads the pixels, so the file can be closed here


def plot_losses(records: list[dict], path: str | Path) -> None:
    """A PNG of d_loss and g_loss against step, plus D(x) and D(G(z)) when records have them.

    Records are dicts with 'step', 'd_loss', 'g_loss' and optionally 'd_real', 'd_fake'.
    """
    if not records:
        raise GxError(
            f"no loss records to plot into {path}. Fix: train for at least one logged step"
        )
    # Imported here: matplotlib takes a noticeable time to import and only plotting needs it. The
    # Figure + Agg canvas pair never touches pyplot, so no GUI backend and no global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    has_outputs = any("d_real" in record or "d_fake" in record for record in records)
    figure = Figure(figsize=(8, 7 if has_outputs else 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2 if has_outputs else 1, 1, sharex=True, squeeze=False)[:, 0]
    _plot_series(axes[0], records, {"d_loss": "discriminator", "g_loss": "generator"})
    axes[0].set(title="Losses", ylabel="loss")
    if has_outputs:
        _plot_series(axes[1], records, {"d_real": "D(x), real images", "d_fake": "D(G(z)), fakes"})
        axes[1].set(title="Discriminator outputs", ylabel="mean D output")
    axes[-1].set_xlabel("step")
    picture = io.BytesIO()
    figure.savefig(picture, dpi=100, format=Path(path).suffix[1:] or "png")
    _write(path, picture.getvalue())


def _plot_series(axis, records: list[dict], labels: dict[str, str]) -> None:
    for key, label in labels.items():
        points = [(record["step"], record[key]) for record in records if key in record]
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, label=label, linewidth=1)
    axis.grid(alpha=0.3)
    if axis.lines:  # a legend without lines only produces a warning
        axis.legend()


def _save(image: Image.Image, path: str | Path, **options: object) -> None:
    """Encode ``image`` in the format its file name says, then write it whole."""
    suffix = Path(path).suffix.lower()
    kind = Image.registered_extensions().get(suffix)
    if kind is None:
        raise GxError(f"cannot tell an image format from '{path}'. Fix: end it in .png or .gif")
    encoded = io.BytesIO()
    image.save(encoded, format=kind, **options)
    _write(path, encoded.getvalue())


def _write(path: str | Path, data: bytes) -> None:
    """A file only ever complete under its name (gx.outputs.replace_file), its folder made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
