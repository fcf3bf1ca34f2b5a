"""Where trained evaluation classifiers are kept: a safetensors file plus a JSON file each.

The cache key is a hash of the dataset name, the image size, the SHA-256 of every image and label
file used, the classifier spec and the training recipe, so another dataset, size, file or recipe
is never mistaken for a cached classifier. The cache lives next to the data in ``classifiers/``
(in an image folder: ``.gx-cache/classifiers/``), or in ``~/.cache/gx/classifiers/`` when the
data folder is read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from gx.data import FOLDER
from gx.data.folder import CACHE_FOLDER
from gx.errors import GxError
from gx.evaluate.classifier import FORMAT, ClassifierRecipe
from gx.outputs import WRITE_ERRORS, reason, replace_file
from gx.spec import ModelSpec


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(
    dataset: str, image_size: int, files: list[Path], spec: ModelSpec, recipe: ClassifierRecipe
) -> str:
    """SHA-256 over everything that decides the classifier's weights."""
    parts = {
        "format": FORMAT,
        "dataset": dataset,
        "image_size": image_size,
        "files": {path.name: _file_digest(path) for path in files},
        "spec": spec.to_dict(),
        "recipe": recipe.to_dict(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def writable_folder(folder: Path) -> bool:
    """A folder we may write in: existing with write permission bits, or creatable.

    The permission bits are honoured even for root, so a data folder published read-only
    (r-x for everyone) is never written to.
    """
    while not folder.exists():
        folder = folder.parent
    mode = folder.stat().st_mode
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def user_cache_dir() -> Path:
    return Path.home() / ".cache" / "gx" / "classifiers"


def cache_dirs(root: str | Path, dataset: str) -> list[Path]:
    """Where cached classifiers are looked up, in order: next to the data, then the user cache.

    In an image folder they go into its hidden cache folder, where they cannot pass for a class.
    """
    beside = Path(root).expanduser()
    if dataset == FOLDER:
        beside = beside / CACHE_FOLDER
    return [beside / "classifiers", user_cache_dir()]


def cache_name(dataset: str, image_size: int, key: str) -> str:
    return f"{dataset}-{image_size}px-{key[:16]}"


def find_cached(dataset: str, image_size: int, key: str, root: Path) -> Path | None:
    for folder in cache_dirs(root, dataset):
        document = folder / (cache_name(dataset, image_size, key) + ".json")
        if document.is_file():
            try:
                if json.loads(document.read_text()).get("key") == key:
                    return document
            except (OSError, ValueError):
                continue  # a damaged entry is retrained and overwritten
    return None


def save_classifier(
    folder: Path, name: str, weights: dict[str, np.ndarray], info: dict[str, Any]
) -> Path:
    """Write the weights and then the JSON naming them, each whole (a JSON file only ever names
    complete weights); a place that cannot take them is one ``GxError``, leaving no file."""
    weights_path = folder / f"{name}.safetensors"
    document = folder / f"{name}.json"
    staging = weights_path.with_suffix(".partial")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(staging))
        os.replace(staging, weights_path)
        replace_file(document, json.dumps(info, indent=1).encode())
    except WRITE_ERRORS as error:
        raise GxError(
            f"cannot save the evaluation classifier in {folder} ({reason(error)}); free some "
            "space there, or point --data-root at a copy of the data on a disk with room"
        ) from None
    finally:
        staging.unlink(missing_ok=True)
    return document


# -- training ------------------------------------------------------------------------------------
