"""The real images the evaluation classifier learns from and is checked on.

- a published dataset whose train split is on disk (a full-dataset machine): all of the train
  split, and the test split is the held-out set;
- a published dataset with only its test split on disk (as on gx's CI machines): a fixed 8,500 of
  the 10,000 test images, chosen by a seeded permutation, and the other 1,500 are held out;
- an image folder: the same, a fixed 15% of its images held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gx.data import FOLDER, ensure_files, has_test_split, load_dataset, locate_file
from gx.data.folder import list_folder
from gx.data.registry import dataset_info
from gx.errors import GxError

HELD_OUT_WHEN_TEST_ONLY = 1500
HELD_OUT_FRACTION_OF_FOLDER = 0.15
SPLIT_SEED = 0


@dataclass
class LabelledSplit:
    """The classifier's training and held-out images, and the files they came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    held_out_images: np.ndarray
    held_out_labels: np.ndarray
    files: list[Path]
    description: str


def train_split_present(dataset: str, root: Path) -> bool:
    """Whether a published dataset's train split is on disk (then it trains the classifier)."""
    info = dataset_info(dataset)
    return all(locate_file(root, file) is not None for file in info.parts["train"])


def source_files(dataset: str, root: Path) -> tuple[str, list[Path]]:
    """The split the classifier's images come from ('both', 'test', or an image folder's only
    split, 'train') and its files.

    Only a test split is ever downloaded here: the train split is used when it is already on
    disk (``gx run`` downloads it on machines that can).
    """
    if dataset == FOLDER:
        listing = list_folder(root)
        if not listing.class_names:
            raise GxError(
                f"{root} has no class folders, and the evaluation classifier learns from "
                "labelled images. Fix: put the images in one subfolder per class"
            )
        return "train", list(listing.files)
    split = "both" if train_split_present(dataset, root) else "test"
    return split, sorted(ensure_files(dataset, root, split, download=split == "test").values())


def labelled_split(
    dataset: str, root: str | Path, image_size: int, channels: int = 1
) -> LabelledSplit:
    """Training and held-out images as described in the module docstring."""
    root = Path(root).expanduser()
    split, files = source_files(dataset, root)
    if split == "both":
        train_images, train_labels = load_dataset(
            dataset, root, "train", image_size, False, channels
        )
        held_images, held_labels = load_dataset(dataset, root, "test", image_size, False, channels)
        return LabelledSplit(
            train_images,
            train_labels,
            held_images,
            held_labels,
            files,
            "train split for training, test split held out",
        )
    images, labels = load_dataset(dataset, root, split, image_size, False, channels)
    held_out = (
        HELD_OUT_WHEN_TEST_ONLY
        if has_test_split(dataset)
        else max(1, round(HELD_OUT_FRACTION_OF_FOLDER * len(images)))
    )
    # The split is fixed (its own seed), whatever the training recipe's seed.
    order = np.random.default_rng([SPLIT_SEED, len(images)]).permutation(len(images))
    train, held = order[:-held_out], order[-held_out:]
    what = f"{split} split only" if has_test_split(dataset) else f"image folder {root}"
    return LabelledSplit(
        images[train],
        labels[train],
        images[held],
        labels[held],
        files,
        f"{what}: {len(train)} images for training, a fixed {len(held)} held out",
    )


def real_split(dataset: str) -> str:
    """Where ``gx eval`` takes the real images it compares with: the test split, or all of an
    image folder."""
    return "test" if has_test_split(dataset) else "train"
