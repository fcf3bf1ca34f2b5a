"""An experiment's training images, loaded for its model and checked against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gx.config import DataConfig
from gx.data import FOLDER, class_names, ensure_files, load_dataset
from gx.errors import GxError
from gx.models import GanModel


def check_data(data: DataConfig, root: Path, model: GanModel, classes: int) -> None:
    """What can be checked of the data without decoding it, so that a mistake is found before
    a framework loads: its files are there (downloaded when missing and allowed) and, where the
    run reads labels (``classes`` > 0: gx.losses.label_classes), it has class folders, no more
    than that."""
    if classes:
        names = class_names(data.dataset, root)
        if not names:
            raise GxError(
                f"model '{model.name}' reads class labels but {root} has no class folders. "
                "Fix: put the images in one subfolder per class, or use an unconditional model"
            )
        if len(names) > classes:
            raise GxError(
                f"{data.dataset} at {root} has {len(names)} classes but model '{model.name}' has "
                f"{classes}. Fix: set the model's classes to {len(names)} (its label input's "
                "classes, or model.options.classes), or train on fewer classes"
            )
    if data.dataset != FOLDER:
        ensure_files(data.dataset, root, data.split, data.download)


def training_data(
    data: DataConfig, root: Path, model: GanModel, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the experiment's split, in the model's channels, checked to fit it:
    the image shape (a null data.image_size keeps the files' size) and, where the run reads
    labels, as many classes as it draws."""
    check_data(data, root, model, classes)
    images, labels = load_dataset(
        data.dataset, root, data.split, data.image_size, data.download, model.image_shape[0]
    )
    if classes:
        _check_all_classes(data, root, model, classes)
    if images.shape[1:] != model.image_shape:
        found = "x".join(str(side) for side in images.shape[2:])
        height, width = model.image_shape[1:]
        raise GxError(
            f"the images at {root} are {found} but model '{model.name}' works on "
            f"{height}x{width} images. Fix: set data.image_size: {height} so gx resizes them"
        )
    return images, labels


def _check_all_classes(data: DataConfig, root: Path, model: GanModel, classes: int) -> None:
    """A run that reads labels, on fewer classes than it draws: D would never see a real image
    of the others, yet G is asked for them at every step."""
    names = class_names(data.dataset, root)
    if len(names) >= classes:
        return
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    fix = "use an unconditional model" if len(names) == 1 else "add the missing class folders"
    raise GxError(
        f"{data.dataset} at {root} has {len(names)} class(es) ({shown}) but model "
        f"'{model.name}' draws {classes}. Fix: set the model's classes to {len(names)} "
        f"(its label input's classes, or model.options.classes), or {fix}"
    )
