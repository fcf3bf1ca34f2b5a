"""Load a dataset split as arrays ready for training, identical whichever backend consumes them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from gx.data.download import ensure_files
from gx.data.idx import read_idx
from gx.data.registry import PartFiles, dataset_info, split_parts
from gx.errors import GxError

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 256
_NATIVE_SIZE = 28

# Pillow >= 9.1 moved the filters into Image.Resampling and (until 10) warned on the old names;
# older Pillows only have the old names.
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR


def resolve_data_root(dataset: str, cli_root: str | None, config_root: str | None) -> Path:
    """The folder holding the dataset's files.

    First of: the CLI's --data-root, the GX_DATA_ROOT environment variable, the experiment's
    data.root, then ~/.cache/gx/data/<dataset>. Each names the folder the files sit in directly.
    """
    dataset_info(dataset)  # an unknown name fails here, before any folder is touched
    for root in (cli_root, os.environ.get("GX_DATA_ROOT"), config_root):
        if root:  # an empty GX_DATA_ROOT counts as unset
            return Path(root).expanduser()
    return Path.home() / ".cache" / "gx" / "data" / dataset


def load_dataset(
    dataset: str, root: str | Path, split: str, image_size: int, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a split: float32 (N, 1, S, S) in [-1, 1] and int64 (N,).

    Images are resized with Pillow's bilinear filter on the uint8 digits and scaled as
    (x / 255 - 0.5) / 0.5, which is what torchvision's Resize, ToTensor and Normalize(0.5, 0.5)
    produce, so results compare with the usual PyTorch pipelines.
    """
    _check_image_size(image_size)
    parts = split_parts(dataset_info(dataset), split)
    paths = ensure_files(dataset, root, split, download)
    loaded = [_read_part(part, paths) for part in parts]
    digits = np.concatenate([images for images, _ in loaded])
    labels = np.concatenate([labels for _, labels in loaded]).astype(np.int64)
    if image_size != _NATIVE_SIZE:
        digits = _resize(digits, image_size)
    return _scale_to_unit_range(digits)[:, np.newaxis], labels


def _check_image_size(image_size: int) -> None:
    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise GxError(
            f"image size {image_size!r} is out of range. Fix: use a whole number from "
            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
        )


def _read_part(part: PartFiles, paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = paths[part.images.name], paths[part.labels.name]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (_NATIVE_SIZE,) * 2:
        raise GxError(
            f"{images_path} holds {images.dtype} {images.shape}, not 28x28 uint8 images. "
            "Fix: replace it with the published file"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise GxError(
            f"{labels_path} has {labels.shape} labels for {len(images)} images in "
            f"{images_path}. Fix: replace both with the published files"
        )
    return images, labels


def _resize(digits: np.ndarray, size: int) -> np.ndarray:
    # One image at a time: a bilinear filter over a mosaic would blend neighbouring digits at the
    # edges, and Pillow on a 28x28 image is fast enough (about two seconds for 70,000).
    resized = np.empty((len(digits), size, size), dtype=np.uint8)
    for index, digit in enumerate(digits):
        resized[index] = np.asarray(Image.fromarray(digit).resize((size, size), _BILINEAR))
    return resized


def _scale_to_unit_range(digits: np.ndarray) -> np.ndarray:
    # float32 throughout, in torchvision's order of operations, so 0 and 255 land exactly on -1
    # and 1 and every value matches its pipeline bit for bit.
    scaled = digits.astype(np.float32) / np.float32(255)
    return (scaled - np.float32(0.5)) / np.float32(0.5)
