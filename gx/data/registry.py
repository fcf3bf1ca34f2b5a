"""The datasets gx knows: the files each is published as, their md5s, where to get them, and the
images they hold."""

from __future__ import annotations

from dataclasses import dataclass

from gx.errors import GxError

# Not a published dataset: class-labelled images in a folder the experiment names (gx.data.folder).
FOLDER = "folder"


@dataclass(frozen=True)
class PublishedFile:
    """One published file: its name on the mirrors and the md5 of those bytes."""

    name: str
    md5: str

    @property
    def raw_name(self) -> str:
        """The name once un-gzipped, which is how many people keep these files."""
        return self.name[: -len(".gz")] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class DatasetInfo:
    """A published dataset. ``parts`` maps each published part (train, test) to the files that
    hold it, read by the reader ``layout`` names: 'idx' (an images file and a labels file) or
    'cifar-binary' (one archive of fixed-size records for every part)."""

    name: str
    mirrors: tuple[str, ...]
    parts: dict[str, tuple[PublishedFile, ...]]
    layout: str
    channels: int  # as published: 1 grayscale, 3 RGB
    image_size: int  # as published, square
    class_names: tuple[str, ...]


# What each split name means, as published parts in order; 'both' is train then test.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "test": ("test",),
    "both": ("train", "test"),
}


def _mnist_style_parts(
    train_images_md5: str, train_labels_md5: str, test_images_md5: str, test_labels_md5: str
) -> dict[str, tuple[PublishedFile, ...]]:
    # MNIST and Fashion-MNIST publish the same four file names; only the bytes differ.
    return {
        "train": (
            PublishedFile("train-images-idx3-ubyte.gz", train_images_md5),
            PublishedFile("train-labels-idx1-ubyte.gz", train_labels_md5),
        ),
        "test": (
            PublishedFile("t10k-images-idx3-ubyte.gz", test_images_md5),
            PublishedFile("t10k-labels-idx1-ubyte.gz", test_labels_md5),
        ),
    }


_CIFAR10_ARCHIVE = PublishedFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")

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
        layout="idx",
        channels=1,
        image_size=28,
        class_names=tuple("0123456789"),
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
        layout="idx",
        channels=1,
        image_size=28,
        class_names=(
            "t-shirt",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle-boot",
        ),  # fmt: skip
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        parts={"train": (_CIFAR10_ARCHIVE,), "test": (_CIFAR10_ARCHIVE,)},
        layout="cifar-binary",
        channels=3,
        image_size=32,
        class_names=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),  # fmt: skip
    ),
}

# Every name data.dataset accepts.
DATASET_NAMES = (*DATASETS, FOLDER)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for a published dataset's name."""
    if name not in DATASETS:
        raise GxError(
            f"unknown dataset '{name}'. Fix: use one of {', '.join(sorted(DATASET_NAMES))}"
        )
    return DATASETS[name]


def split_parts(info: DatasetInfo, split: str) -> list[str]:
    """The published parts a split consists of, in the order their images are concatenated."""
    if split not in SPLITS:
        raise GxError(f"unknown split '{split}'. Fix: use one of {', '.join(SPLITS)}")
    return list(SPLITS[split])


def split_files(info: DatasetInfo, split: str) -> list[PublishedFile]:
    """Every file a split needs, each once."""
    files = [file for part in split_parts(info, split) for file in info.parts[part]]
    return list(dict.fromkeys(files))
