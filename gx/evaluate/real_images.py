"""The real images the evaluation classifier learns from and is checked on.

- when the dataset's train split is on disk (a full-dataset machine): all of the train split, and
  the test split is the held-out set;
- otherwise (only the 10,000-image test split, as on gx's CI machines): a fixed 8,500 of the test
  split, chosen by a seeded permutation, and the other 1,500 are held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gx.data import ensure_files, load_dataset, locate_file
from gx.data.registry import dataset_info

HELD_OUT_WHEN_TEST_ONLY = 1500
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
    """Whether the dataset's train split is on disk (then it trains the classifier)."""
    part = dataset_info(dataset).parts["train"]
    return all(locate_file(root, file) is not None for file in (part.images, part.labels))


def source_files(dataset: str, root: Path) -> tuple[str, list[Path]]:
    """The split the classifier's images come from ('both' or 'test') and its files.

    Only the test split is ever downloaded here: the train split is used when it is already on
    disk (``gx run`` downloads it on machines that can).
    """
    split = "both" if train_split_present(dataset, root) else "test"
    return split, sorted(ensure_files(dataset, root, split, download=split == "test").values())


def labelled_split(dataset: str, root: str | Path, image_size: int) -> LabelledSplit:
    """Training and held-out images as described in the module docstring."""
    root = Path(root).expanduser()
    split, files = source_files(dataset, root)
    if split == "both":
        train_images, train_labels = load_dataset(dataset, root, "train", image_size, False)
        held_images, held_labels = load_dataset(dataset, root, "test", image_size, False)
        return LabelledSplit(
            train_images,
            train_labels,
            held_images,
            held_labels,
            files,
            "train split for training, test split held out",
        )
    images, labels = load_dataset(dataset, root, "test", image_size, False)
    # The split is fixed (its own seed), whatever the training recipe's seed.
    order = np.random.default_rng([SPLIT_SEED, len(images)]).permutation(len(images))
    train, held = order[:-HELD_OUT_WHEN_TEST_ONLY], order[-HELD_OUT_WHEN_TEST_ONLY:]
    return LabelledSplit(
        images[train],
        labels[train],
        images[held],
        labels[held],
        files,
        f"test split only: {len(train)} images for training, a fixed {len(held)} held out",
    )


# -- cache ---------------------------------------------------------------------------------------
