"""Datasets as numpy arrays: reading idx files, finding or downloading them, and batch order.

Backend-neutral on purpose: both backends train on the very same arrays and batch indices.
"""

from gx.data.batches import Batch, batch_indices, batches, steps_per_epoch
from gx.data.datasets import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    load_dataset,
    resolve_data_root,
)
from gx.data.download import ensure_files, locate_file
from gx.data.idx import read_idx
from gx.data.registry import DATASETS, SPLITS, DatasetInfo, IdxFile, dataset_info

__all__ = [
    "Batch",
    "batches",
    "DATASETS",
    "MAX_IMAGE_SIZE",
    "MIN_IMAGE_SIZE",
    "SPLITS",
    "DatasetInfo",
    "IdxFile",
    "batch_indices",
    "dataset_info",
    "ensure_files",
    "load_dataset",
    "locate_file",
    "read_idx",
    "resolve_data_root",
    "steps_per_epoch",
]
