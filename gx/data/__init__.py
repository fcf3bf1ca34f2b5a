"""Datasets as numpy arrays: published datasets (found or downloaded), image folders, and batch
order.

Backend-neutral on purpose: both backends train on the very same arrays and batch indices.
"""

from gx.data.batches import Batch, batch_indices, batches, steps_per_epoch
from gx.data.datasets import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    class_names,
    has_test_split,
    load_dataset,
    native_channels,
    resolve_data_root,
)
from gx.data.download import ensure_files, locate_file
from gx.data.idx import read_idx
from gx.data.registry import (
    DATASET_NAMES,
    DATASETS,
    FOLDER,
    SPLITS,
    DatasetInfo,
    PublishedFile,
    dataset_info,
)

__all__ = [
    "Batch",
    "DATASETS",
    "DATASET_NAMES",
    "FOLDER",
    "MAX_IMAGE_SIZE",
    "MIN_IMAGE_SIZE",
    "SPLITS",
    "DatasetInfo",
    "PublishedFile",
    "batch_indices",
    "batches",
    "class_names",
    "dataset_info",
    "ensure_files",
    "has_test_split",
    "load_dataset",
    "locate_file",
    "native_channels",
    "read_idx",
    "resolve_data_root",
    "steps_per_epoch",
]
