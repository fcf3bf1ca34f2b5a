"""Class-labelled images from a folder: one subfolder per class, or one folder of images for an
unconditional model.

The subfolder names, sorted, are the class names and the label order. Each image is decoded with
Pillow, converted to grayscale ('L') or RGB (an alpha channel is dropped), and resized with the
bilinear filter to image_size x image_size (a non-square image is stretched). The decoded uint8
array is cached in ``.gx-cache/`` inside the folder (or in ~/.cache/gx/decoded when the folder is
read-only), keyed by every file's name, size and modification time and by the settings, so the
second run starts at once and an edited folder is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gx.data.pixels import BILINEAR
from gx.errors import GxError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
CACHE_FOLDER = ".gx-cache"
_CACHE_FORMAT = "gx-folder-cache-1"


@dataclass(frozen=True)
class FolderListing:
    """The images of a folder in label order, and the class names (empty: no class folders)."""

    root: Path
    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    labels: tuple[int, ...]


def _images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, by name; hidden files (and the cache) are not."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
    )


def list_folder(root: Path) -> FolderListing:
    """The folder's classes and images; one error naming the folder for every layout mistake."""
    if not root.is_dir():
        raise GxError(
            f"image folder {root} does not exist. Fix: set data.root (or --data-root) to a "
            "folder with one subfolder of images per class"
        )
    classes = sorted(
        path.name for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")
    )
    loose = _images_in(root)
    if not classes:
        if not loose:
            raise GxError(
                f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}). Fix: put one "
                "subfolder of images per class there, or the images themselves for an "
                "unconditional model"
            )
        return FolderListing(root, (), tuple(loose), (0,) * len(loose))
    if loose:
        raise GxError(
            f"{root} holds both class folders and images ({loose[0].name}, ...). Fix: move "
            "every image into the folder of its class"
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = _images_in(root / name)
        if not images:
            raise GxError(
                f"class folder {root / name} holds no images. Fix: add images of class "
                f"'{name}', or remove the folder"
            )
        files += images
        labels += [label] * len(images)
    return FolderListing(root, tuple(classes), tuple(files), tuple(labels))


def load_folder(root: Path, channels: int, image_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the folder: uint8 (N, S, S, channels) and int64 (N,).

    ``image_size`` None keeps the images' own size, which must then be one for all of them.
    """
    listing = list_folder(root)
    key = _cache_key(listing, channels, image_size)
    cached = _read_cache(root, key)
    if cached is not None:
        return cached
    images = _decode_all(listing, channels, image_size)
    labels = np.asarray(listing.labels, dtype=np.int64)
    _write_cache(root, key, images, labels)
    return images, labels


def _decode_all(listing: FolderListing, channels: int, image_size: int | None) -> np.ndarray:
    mode = "L" if channels == 1 else "RGB"
    decoded: list[np.ndarray] = []
    for path in listing.files:
        image = _open(path).convert(mode)
        if image_size is not None and image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), BILINEAR)
        elif image_size is None and decoded and image.size != decoded[0].shape[1::-1]:
            first = listing.files[0]
            raise GxError(
                f"{path} is {image.size[0]}x{image.size[1]} but {first} is "
                f"{decoded[0].shape[1]}x{decoded[0].shape[0]}, and data.image_size is null "
                "(keep the images' size). Fix: set data.image_size so gx resizes them all"
            )
        decoded.append(np.asarray(image, dtype=np.uint8).reshape(image.size[1], image.size[0], -1))
    return np.stack(decoded)


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise GxError(
            f"{path} is not an image Pillow can read ({error}). Fix: replace or remove the file"
        ) from None
    return image


def _cache_key(listing: FolderListing, channels: int, image_size: int | None) -> str:
    files = []
    for path in listing.files:
        status = path.stat()
        files.append([str(path.relative_to(listing.root)), status.st_size, status.st_mtime_ns])
    document = {
        "format": _CACHE_FORMAT,
        "files": files,
        "labels": list(listing.labels),
        "channels": channels,
        "image_size": image_size,
    }
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def _cache_paths(root: Path, key: str) -> list[Path]:
    """Beside the data first; the user cache (named by the folder too) when that is read-only."""
    folder_id = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return [
        root / CACHE_FOLDER / f"{key[:32]}.npz",
        Path.home() / ".cache" / "gx" / "decoded" / f"{folder_id}-{key[:32]}.npz",
    ]


def _read_cache(root: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    for path in _cache_paths(root, key):
        try:
            with np.load(path) as stored:
                if str(stored["key"]) == key:
                    return stored["images"], stored["labels"]
        except (OSError, KeyError, ValueError):
            continue  # absent or damaged: decode again
    return None


def _write_cache(root: Path, key: str, images: np.ndarray, labels: np.ndarray) -> None:
    for path in _cache_paths(root, key):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A temporary file renamed into place: a reader never sees half an array.
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
            with os.fdopen(handle, "wb") as out:
                np.savez(out, key=np.asarray(key), images=images, labels=labels)
            os.replace(temporary, path)
            return
        except OSError:
            continue  # read-only: try the next place; without a cache the next run decodes again
