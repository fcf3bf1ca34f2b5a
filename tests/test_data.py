"""gx.data: idx reading, data roots, downloading (from a local server only), loading, batching."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from gx.data import (
    batch_indices,
    ensure_files,
    load_dataset,
    read_idx,
    resolve_data_root,
    steps_per_epoch,
)
from gx.errors import GxError

TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


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
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big")
                     + (-1).to_bytes(4, "big", signed=True))
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
    with pytest.raises(GxError, match="unknown dataset 'cifar10'.*fashion_mnist, mnist"):
        load_dataset("cifar10", mnist_root, "test", 28, download=False)


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


# --- downloading from a local HTTP server ------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def serve_folder():
    """Serves a folder on 127.0.0.1 and returns its base URL; stopped at the end of the test."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/mnist/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _published_copy(mnist_root: Path, folder: Path) -> Path:
    (folder / "mnist").mkdir(parents=True)
    for name in (TEST_IMAGES, TEST_LABELS):
        shutil.copy(mnist_root / name, folder / "mnist" / name)
    return folder / "mnist"


def test_download_from_mirror(mnist_root, tmp_path, serve_folder):
    url = serve_folder(tmp_path / "server")
    _published_copy(mnist_root, tmp_path / "server")
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
    published = _published_copy(mnist_root, tmp_path / "bad")
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
    _published_copy(mnist_root, tmp_path / "good")
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
