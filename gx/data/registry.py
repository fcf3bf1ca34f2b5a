"""The datasets gx knows: the files each is published as, their md5s, and where to get them."""

from __future__ import annotations

from dataclasses import dataclass

from gx.errors import GxError


@dataclass(frozen=True)
class IdxFile:
    """One published file: its gzip-compressed name on the mirrors and the md5 of those bytes."""

    name: str
    md5: str

    @property
    def raw_name(self) -> str:
        """The name once un-gzipped, which is how many people keep these files."""
        return self.name[: -len(".gz")]


@dataclass(frozen=True)
class PartFiles:
    """The images file and the labels file of one published part (train or test)."""

    images: IdxFile
    labels: IdxFile


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    mirrors: tuple[str, ...]
    parts: dict[str, PartFiles]


# What each split name means, as published parts in order; 'both' is train then test.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "test": ("test",),
    "both": ("train", "test"),
}


def _mnist_style_parts(
    train_images_md5: str, train_labels_md5: str, test_images_md5: str, test_labels_md5: str
) -> dict[str, PartFiles]:
    # MNIST and Fashion-MNIST publish the same four file names; only the bytes differ.
    return {
        "train": PartFiles(
            IdxFile("train-images-idx3-ubyte.gz", train_images_md5),
            IdxFile("train-labels-idx1-ubyte.gz", train_labels_md5),
        ),
        "test": PartFiles(
            IdxFile("t10k-images-idx3-ubyte.gz", test_images_md5),
            IdxFile("t10k-labels-idx1-ubyte.gz", test_labels_md5),
        ),
    }


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        parts=_mnist_style_parts(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        parts=_mnist_style_parts(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for a dataset name."""
    if name not in DATASETS:
        raise GxError(f"unknown dataset '{name}'. Fix: use one of {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def split_parts(info: DatasetInfo, split: str) -> list[PartFiles]:
    """The published parts a split consists of, in the order their images are concatenated."""
    if split not in SPLITS:
        raise GxError(f"unknown split '{split}'. Fix: use one of {', '.join(SPLITS)}")
    return [info.parts[part] for part in SPLITS[split]]


def split_files(info: DatasetInfo, split: str) -> list[IdxFile]:
    """Every file a split needs: images and labels of each of its parts."""
    return [file for part in split_parts(info, split) for file in (part.images, part.labels)]
