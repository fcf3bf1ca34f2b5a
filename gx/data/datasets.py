"""Load a dataset split as arrays ready for training, identical whichever backend consumes them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gx.data import cifar
from gx.data.download import ensure_files
from gx.data.folder import list_folder, load_folder
from gx.data.idx import read_idx
from gx.data.pixels import resize, scale_to_unit_range, to_channels
from gx.data.registry import FOLDER, DatasetInfo, dataset_info, split_parts
from gx.errors import GxError

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 256


def resolve_data_root(dataset: str, cli_root: str | None, config_root: str | None) -> Path:
    """The folder holding the dataset's files.

    First of: the CLI's --data-root, the GX_DATA_ROOT environment variable, the experiment's
    data.root, then ~/.cache/gx/data/<dataset>. Each names the folder the files sit in directly.
    An image folder is the experiment's own data, so GX_DATA_ROOT (where a machine keeps its
    published datasets) does not replace it, and there is no default.
    """
    if dataset == FOLDER:
        root = cli_root or config_root
        if not root:
            raise GxError(
                "data.dataset is folder but no folder is named. Fix: set data.root to the "
                "folder of images (one subfolder per class), or pass --data-root"
            )
        return Path(root).expanduser()
    dataset_info(dataset)  # an unknown name fails here, before any folder is touched
    for root in (cli_root, os.environ.get("GX_DATA_ROOT"), config_root):
        if root:  # an empty GX_DATA_ROOT counts as unset
            return Path(root).expanduser()
    return Path.home() / ".cache" / "gx" / "data" / dataset


def class_names(dataset: str, root: str | Path) -> tuple[str, ...]:
    """The dataset's classes in label order (an image folder without class folders has none)."""
    if dataset == FOLDER:
        return list_folder(Path(root).expanduser()).class_names
    return dataset_info(dataset).class_names


def native_channels(dataset: str) -> int:
    """The channels a dataset is published with; an image folder is read as RGB by default."""
    return 3 if dataset == FOLDER else dataset_info(dataset).channels


def has_test_split(dataset: str) -> bool:
    """Published datasets have a test split; an image folder has only its images."""
    return dataset != FOLDER


def load_dataset(
    dataset: str,
    root: str | Path,
    split: str,
    image_size: int | None,
    download: bool = True,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a split: float32 (N, C, S, S) in [-1, 1] and int64 (N,).

    ``channels`` 1 or 3 (None: as published; RGB for an image folder). ``image_size`` None keeps
    the images' size. Images are converted, then resized with Pillow's bilinear filter on the
    uint8 pixels, and scaled as (x / 255 - 0.5) / 0.5, which is what torchvision's Resize,
    ToTensor and Normalize(0.5, 0.5) produce, so results compare with the usual PyTorch pipelines.
    """
    if image_size is not None:
        _check_image_size(image_size)
    root = Path(root).expanduser()
    if dataset == FOLDER:
        if split != "train":
            raise GxError(
                f"an image folder has one split, train, not '{split}'. Fix: set "
                "data.split: train (keep held-out images in another folder)"
            )
        pixels, labels = load_folder(root, channels or native_channels(dataset), image_size)
        return scale_to_unit_range(pixels), labels
    info = dataset_info(dataset)
    paths = ensure_files(dataset, root, split, download)
    loaded = [_read_part(info, part, paths) for part in split_parts(info, split)]
    pixels = np.concatenate([images for images, _ in loaded])
    pixels = to_channels(pixels, channels or native_channels(dataset))
    labels = np.concatenate([labels for _, labels in loaded]).astype(np.int64)
    if image_size is not None:
        pixels = resize(pixels, image_size)
    return scale_to_unit_range(pixels), labels


def _check_image_size(image_size: int) -> None:
    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise GxError(
            f"image size {image_size!r} is out of range. Fix: use a whole number from "
            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
        )


def _read_part(
    info: DatasetInfo, part: str, paths: dict[str, Path]
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, C) images and their labels, as published."""
    if info.layout == "cifar-binary":
        (archive,) = info.parts[part]
        return cifar.read_part(paths[archive.name], part)
    images_file, labels_file = info.parts[part]
    images_path, labels_path = paths[images_file.name], paths[labels_file.name]
    images, labels = read_idx(images_path), read_idx(labels_path)
    size = info.image_size
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (size, size):
        raise GxError(
            f"{images_path} holds {images.dtype} {images.shape}, not {size}x{size} uint8 images. "
            "Fix: replace it with the published file"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise GxError(
            f"{labels_path} has {labels.shape} labels for {len(images)} images in "
            f"{images_path}. Fix: replace both with the published files"
        )
    return images[..., np.newaxis], labels
