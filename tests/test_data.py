"""gx.data: idx reading, data roots, downloading (from a local server only), loading, batching."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from support import MNIST_TEST_FILES, find_mnist_test_split, gx
from tiny import write_tiny_experiment

import gx.data.download as download
from gx.data import (
    batch_indices,
    dataset_info,
    ensure_files,
    load_dataset,
    read_idx,
    resolve_data_root,
    steps_per_epoch,
)
from gx.errors import GxError

TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
# As published with MNIST.
PUBLISHED_MD5 = {
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}


# --- read_idx ---------------------------------------------------------------------------------


def test_read_idx_real_mnist_test_split(mnist_root):
    images = read_idx(mnist_root / TEST_IMAGES)
    labels = read_idx(mnist_root / TEST_LABELS)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert np.bincount(labels).sum() == 10000 and len(np.bincount(labels)) == 10
    assert labels[0] == 7
    assert images.max() == 255 and images.min() == 0


def test_read_idx_raw_file_equals_gzipped(mnist_root, tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress((mnist_root / TEST_LABELS).read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(mnist_root / TEST_LABELS))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_truncated_file_names_the_file(mnist_root, tmp_path, compress):
    data = gzip.decompress((mnist_root / TEST_LABELS).read_bytes())[:5000]
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(GxError, match="t10k-labels-idx1-ubyte.gz") as error:
        read_idx(broken)
    assert "delete it" in str(error.value)


def test_read_idx_truncated_gzip_stream(mnist_root, tmp_path):
    broken = tmp_path / TEST_IMAGES
    broken.write_bytes((mnist_root / TEST_IMAGES).read_bytes()[:100_000])
    with pytest.raises(GxError, match="truncated or corrupt"):
        read_idx(broken)


def test_read_idx_rejects_bad_magic(tmp_path):
    not_idx = tmp_path / "notes.txt"
    not_idx.write_bytes(b"hello, this is not an idx file")
    with pytest.raises(GxError, match="bad magic number"):
        read_idx(not_idx)


def test_read_idx_big_endian_values(tmp_path):
    # type 0x0C = int32, 1 dimension of 2 values, big-endian on disk.
    path = tmp_path / "ints"
    path.write_bytes(
        bytes([0, 0, 0x0C, 1, 0, 0, 0, 2])
        + (258).to_bytes(4, "big")
        + (-1).to_bytes(4, "big", signed=True)
    )
    assert read_idx(path).tolist() == [258, -1]


# --- load_dataset -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 32])
def test_load_dataset_shapes_and_range(mnist_root, size):
    images, labels = load_dataset("mnist", mnist_root, "test", size, download=False)
    assert images.shape == (10000, 1, size, size) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() == 1.0
    assert labels.shape == (10000,) and labels.dtype == np.int64 and labels[0] == 7


def test_load_dataset_scaling_matches_raw_pixels(mnist_root):
    images, _ = load_dataset("mnist", mnist_root, "test", 28, download=False)
    raw = read_idx(mnist_root / TEST_IMAGES)
    np.testing.assert_array_equal(images[:, 0], (raw / np.float32(255) - 0.5) / 0.5)


def test_load_dataset_reads_raw_files(mnist_root, tmp_path):
    for name in (TEST_IMAGES, TEST_LABELS):
        (tmp_path / name[:-3]).write_bytes(gzip.decompress((mnist_root / name).read_bytes()))
    raw_images, raw_labels = load_dataset("mnist", tmp_path, "test", 28, download=False)
    images, labels = load_dataset("mnist", mnist_root, "test", 28, download=False)
    np.testing.assert_array_equal(raw_images, images)
    np.testing.assert_array_equal(raw_labels, labels)


@pytest.mark.parametrize("size", [7, 257, 28.0])
def test_load_dataset_rejects_image_size(mnist_root, size):
    with pytest.raises(GxError, match="image size"):
        load_dataset("mnist", mnist_root, "test", size, download=False)


def test_load_dataset_rejects_unknown_split_and_dataset(mnist_root):
    with pytest.raises(GxError, match="unknown split 'validation'.*train, test, both"):
        load_dataset("mnist", mnist_root, "validation", 28, download=False)
    with pytest.raises(GxError, match="unknown dataset 'imagenet'.*cifar10, fashion_mnist, folder"):
        load_dataset("imagenet", mnist_root, "test", 28, download=False)


# --- data root and missing files --------------------------------------------------------------


def test_resolve_data_root_priority(monkeypatch, tmp_path):
    monkeypatch.setenv("GX_DATA_ROOT", "/env/root")
    assert resolve_data_root("mnist", "/cli/root", "/config/root") == Path("/cli/root")
    assert resolve_data_root("mnist", None, "/config/root") == Path("/env/root")
    monkeypatch.delenv("GX_DATA_ROOT")
    assert resolve_data_root("mnist", None, "/config/root") == Path("/config/root")
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".cache" / "gx" / "data" / "fashion_mnist"
    assert resolve_data_root("fashion_mnist", None, None) == default


def test_resolve_data_root_empty_env_counts_as_unset(monkeypatch):
    monkeypatch.setenv("GX_DATA_ROOT", "")
    assert resolve_data_root("mnist", None, "/config/root") == Path("/config/root")


def test_missing_files_without_download_lists_files_and_folder(mnist_root, tmp_path):
    shutil.copy(mnist_root / TEST_LABELS, tmp_path)
    with pytest.raises(GxError) as error:
        ensure_files("mnist", tmp_path, "both", download=False)
    message = str(error.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", TEST_IMAGES):
        assert name in message
    assert TEST_LABELS not in message
    assert str(tmp_path) in message and "--data-root" in message and "GX_DATA_ROOT" in message
    assert "downloading is off" in message


# --- files already on disk: checked against their published md5 --------------------------------


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_shared_test_split_and_registry_have_the_published_md5s(mnist_root):
    test_part = dataset_info("mnist").parts["test"]
    assert {file.name: file.md5 for file in test_part} == PUBLISHED_MD5
    assert {name: md5_of(mnist_root / name) for name in PUBLISHED_MD5} == PUBLISHED_MD5


def published_copy(mnist_root: Path, folder: Path) -> Path:
    """The test split's files copied into folder, writable whatever the originals' permissions."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED_MD5:
        shutil.copyfile(mnist_root / name, folder / name)
    return folder


def test_copy_of_the_published_files_passes(mnist_root, tmp_path):
    published_copy(mnist_root, tmp_path)
    paths = ensure_files("mnist", tmp_path, "test", download=False)
    assert paths == {name: tmp_path / name for name in PUBLISHED_MD5}


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "one byte changed": lambda data: data[:1000] + bytes([data[1000] ^ 0x01]) + data[1001:],
}


def damaged_copy(mnist_root: Path, folder: Path, damage: str) -> Path:
    """A copy of the test split whose images file is damaged; returns that file."""
    images = published_copy(mnist_root, folder) / TEST_IMAGES
    images.write_bytes(DAMAGES[damage](images.read_bytes()))
    return images


def assert_names_the_damage(message: str, damaged: Path) -> None:
    assert message == (
        f"{damaged} is not the published {TEST_IMAGES}: its md5 is {md5_of(damaged)}, expected "
        f"{PUBLISHED_MD5[TEST_IMAGES]}, so it is truncated, corrupt or not the original. Fix: "
        "delete it so gx downloads it again, or put the original file there"
    )


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_file_on_disk_is_refused_and_left_alone(mnist_root, tmp_path, damage):
    damaged = damaged_copy(mnist_root, tmp_path, damage)
    before = damaged.read_bytes()
    with pytest.raises(GxError) as error:
        load_dataset("mnist", tmp_path, "test", 28, download=True)
    assert_names_the_damage(str(error.value), damaged)
    assert damaged.read_bytes() == before  # the user's file: gx neither deletes nor replaces it


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_gx_run_refuses_a_damaged_file_before_any_run_folder(mnist_root, tmp_path, damage):
    damaged = damaged_copy(mnist_root, tmp_path / "data", damage)
    run = tmp_path / "run"
    status, output = gx(
        "run",
        write_tiny_experiment(tmp_path),
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--data-root",
        tmp_path / "data",
        "--out",
        run,
    )
    assert status == 2
    [line] = output.splitlines()
    assert line.startswith("error: ")
    assert_names_the_damage(line[len("error: ") :], damaged)
    assert not run.exists()


def test_un_gzipped_bytes_under_the_published_name_are_read(mnist_root, tmp_path):
    # Renamed raw files have no published md5; they load as idx.py reads them, by content.
    for name in PUBLISHED_MD5:
        (tmp_path / name).write_bytes(gzip.decompress((mnist_root / name).read_bytes()))
    images, labels = load_dataset("mnist", tmp_path, "test", 28, download=False)
    assert images.shape == (10000, 1, 28, 28) and labels[0] == 7


def test_an_unchanged_file_is_hashed_once_per_process(mnist_root, tmp_path, monkeypatch):
    published_copy(mnist_root, tmp_path)
    monkeypatch.setattr(download, "_SETTLED_NS", 0)  # remember the copies made a moment ago
    hashes = []
    new_md5 = download._new_md5
    monkeypatch.setattr(download, "_new_md5", lambda: hashes.append(1) or new_md5())
    for _ in range(3):
        ensure_files("mnist", tmp_path, "test", download=False)
    assert len(hashes) == len(PUBLISHED_MD5)
    truncated = tmp_path / TEST_LABELS
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(GxError, match=f"{truncated} is not the published"):
        ensure_files("mnist", tmp_path, "test", download=False)


def test_a_file_changed_just_after_its_check_is_checked_again(mnist_root, tmp_path):
    # Same size, same inode, and possibly the same timestamps as when it was checked.
    published_copy(mnist_root, tmp_path)
    ensure_files("mnist", tmp_path, "test", download=False)
    labels = bytearray((tmp_path / TEST_LABELS).read_bytes())
    labels[1000] ^= 0x01
    (tmp_path / TEST_LABELS).write_bytes(bytes(labels))
    with pytest.raises(GxError, match="is not the published t10k-labels"):
        ensure_files("mnist", tmp_path, "test", download=False)


# --- downloading from a local HTTP server ------------------------------------------------------


def test_download_from_mirror(mnist_root, tmp_path, serve_folder):
    url = serve_folder(tmp_path / "server")
    published_copy(mnist_root, tmp_path / "server" / "mnist")
    data_root = tmp_path / "data" / "mnist"
    paths = ensure_files("mnist", data_root, "test", download=True, mirrors=[url])
    assert paths == {TEST_IMAGES: data_root / TEST_IMAGES, TEST_LABELS: data_root / TEST_LABELS}
    assert (data_root / TEST_IMAGES).read_bytes() == (mnist_root / TEST_IMAGES).read_bytes()
    # Only the two files: no temporary downloads left behind.
    assert sorted(p.name for p in data_root.iterdir()) == [TEST_IMAGES, TEST_LABELS]
    images, _ = load_dataset("mnist", data_root, "test", 28, download=False)
    assert images.shape == (10000, 1, 28, 28)


def test_download_rejects_corrupt_file_and_falls_back(mnist_root, tmp_path, serve_folder):
    bad_url = serve_folder(tmp_path / "bad")
    published = published_copy(mnist_root, tmp_path / "bad" / "mnist")
    corrupt = bytearray((published / TEST_LABELS).read_bytes())
    corrupt[100] ^= 0xFF
    (published / TEST_LABELS).write_bytes(bytes(corrupt))
    data_root = tmp_path / "data"

    with pytest.raises(GxError) as error:
        ensure_files("mnist", data_root, "test", download=True, mirrors=[bad_url])
    message = str(error.value)
    assert "md5 mismatch" in message and "ec29112dd5afa0611ce80d1b7f02629c" in message
    assert TEST_LABELS in message and TEST_IMAGES not in message.split("downloading failed")[0]
    assert not (data_root / TEST_LABELS).exists()
    assert [p.name for p in data_root.iterdir()] == [TEST_IMAGES]  # the good file stayed

    good_url = serve_folder(tmp_path / "good")
    published_copy(mnist_root, tmp_path / "good" / "mnist")
    ensure_files("mnist", data_root, "test", download=True, mirrors=[bad_url, good_url])
    assert (data_root / TEST_LABELS).read_bytes() == (mnist_root / TEST_LABELS).read_bytes()


def test_download_unreachable_mirror_lists_missing_files(tmp_path, serve_folder):
    url = serve_folder(tmp_path / "empty")  # answers 404 for everything
    with pytest.raises(GxError) as error:
        ensure_files("mnist", tmp_path / "data", "test", download=True, mirrors=[url])
    message = str(error.value)
    assert "HTTP 404" in message and TEST_IMAGES in message and TEST_LABELS in message
    assert str(tmp_path / "data") in message and "GX_DATA_ROOT" in message


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_download_with_no_server_fails_fast(tmp_path):
    # Nothing listens on the port any more, so every connection is refused at once.
    mirror = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(GxError, match="missing t10k-images-idx3-ubyte.gz, t10k-labels") as error:
        ensure_files("mnist", tmp_path, "test", download=True, mirrors=[mirror])
    # The refused mirror is dropped after the first file rather than retried for the second.
    assert "t10k-labels-idx1-ubyte.gz: no mirror reachable" in str(error.value)


# --- batches ----------------------------------------------------------------------------------


def test_batch_indices_deterministic_per_seed_and_epoch():
    first = batch_indices(1000, 64, seed=3, epoch=0)
    np.testing.assert_array_equal(first, batch_indices(1000, 64, seed=3, epoch=0))
    assert not np.array_equal(first, batch_indices(1000, 64, seed=3, epoch=1))
    assert not np.array_equal(first, batch_indices(1000, 64, seed=4, epoch=0))


def test_batch_indices_known_values():
    # Pinned so a numpy or code change that alters the batch order cannot go unnoticed.
    expected = [[1, 5, 3], [4, 6, 9], [0, 8, 2]]  # index 7 falls in the dropped last batch
    assert batch_indices(10, 3, seed=7, epoch=2).tolist() == expected


def test_batch_indices_drop_last_without_repeats():
    batches = batch_indices(1000, 64, seed=0, epoch=5)
    assert batches.shape == (1000 // 64, 64) and batches.dtype == np.int64
    flat = batches.ravel()
    assert len(np.unique(flat)) == flat.size
    assert flat.min() >= 0 and flat.max() < 1000
    assert steps_per_epoch(1000, 64) == 15 and steps_per_epoch(64, 64) == 1


def test_batch_size_larger_than_dataset():
    with pytest.raises(GxError, match="only 100 images"):
        batch_indices(100, 128, seed=0, epoch=0)
    with pytest.raises(GxError, match="only 100 images"):
        steps_per_epoch(100, 101)
    with pytest.raises(GxError, match="at least 1"):
        steps_per_epoch(100, 0)


def test_the_tests_find_mnist_where_a_contributor_keeps_it(tmp_path, mnist_root):
    def folder_with_split(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for file in MNIST_TEST_FILES:
            (folder / file).symlink_to(Path(mnist_root) / file)
        return folder

    chosen, beside, cache = folder_with_split("chosen"), folder_with_split("beside"), tmp_path / "c"
    nowhere = ["http://127.0.0.1:9/"]  # the discard port: refused at once, as offline
    assert find_mnist_test_split(str(chosen), beside, cache, nowhere) == chosen
    assert find_mnist_test_split(None, beside, cache, nowhere) == beside
    cached = folder_with_split("cached")
    assert find_mnist_test_split(None, tmp_path / "none", cached, nowhere) == cached
    with pytest.raises(LookupError) as caught:
        find_mnist_test_split(None, tmp_path / "none", cache, nowhere)
    message = str(caught.value)
    assert "set GX_TEST_MNIST" in message and f"downloads it to {cache}" in message
    assert not any(cache.glob("*.gz"))  # nothing half-downloaded was left behind
