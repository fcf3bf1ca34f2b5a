"""Your own data: class-labelled image folders and CIFAR-10, grayscale or colour, end to end.

The folders are written by the tests from the MNIST test split (grayscale PNGs, and the same
digits tinted into RGB, one colour per class); the CIFAR-10 archive is one in the published
binary format with random records.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from support import MNIST_TEST_FILES, experiment_file, gx, png, tinted, write_digit_folder
from test_export import export_and_compare
from tiny import tiny_settings

import gx.data.folder as folder_module
from gx.config import experiment_from_dict, load_experiment, model_for
from gx.data import ensure_files, load_dataset, read_idx
from gx.data import registry as registry_module
from gx.data.pixels import to_channels
from gx.errors import GxError
from gx.parity import run_parity
from gx.parity.agreement import agrees

PER_CLASS = 60


@pytest.fixture(scope="module")
def digit_folders(mnist_root, tmp_path_factory) -> dict[str, Path]:
    """Two folders of the same 600 digits: grayscale PNGs and tinted RGB PNGs."""
    base = tmp_path_factory.mktemp("own-data")
    chosen = write_digit_folder(mnist_root, base / "gray", PER_CLASS, tint=False)
    write_digit_folder(mnist_root, base / "tinted", PER_CLASS, tint=True)
    np.save(base / "chosen.npy", chosen)
    return {"gray": base / "gray", "tinted": base / "tinted", "chosen": base / "chosen.npy"}


def mnist_digits(mnist_root: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_idx(mnist_root / MNIST_TEST_FILES[0]), read_idx(mnist_root / MNIST_TEST_FILES[1])


# --- reading a folder ------------------------------------------------------------------------


def test_a_folder_of_grayscale_pngs_loads_as_the_digits_it_was_written_from(
    digit_folders, mnist_root
):
    images, labels = load_dataset("folder", digit_folders["gray"], "train", 28, channels=1)
    chosen = np.load(digit_folders["chosen"])
    expected, expected_labels = load_dataset("mnist", mnist_root, "test", 28, download=False)
    assert images.shape == (10 * PER_CLASS, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(images, expected[chosen])  # PNG is lossless: bit for bit
    np.testing.assert_array_equal(labels, expected_labels[chosen])
    assert labels.tolist() == [label for label in range(10) for _ in range(PER_CLASS)]


def test_a_tinted_folder_loads_as_rgb_and_as_grayscale_luma(digit_folders, mnist_root):
    chosen = np.load(digit_folders["chosen"])
    digits, labels = mnist_digits(mnist_root)
    rgb, rgb_labels = load_dataset("folder", digit_folders["tinted"], "train", 28, channels=3)
    assert rgb.shape == (10 * PER_CLASS, 3, 28, 28)
    first = chosen[0]
    pixels = np.round((rgb[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(pixels, tinted(digits[first], labels[first]))
    gray, _ = load_dataset("folder", digit_folders["tinted"], "train", 28, channels=1)
    luma = np.asarray(Image.fromarray(tinted(digits[first], labels[first])).convert("L"))
    np.testing.assert_array_equal(np.round((gray[0, 0] + 1) * 127.5).astype(np.uint8), luma)
    np.testing.assert_array_equal(rgb_labels, labels[chosen])


def test_rgb_to_grayscale_is_pillows_luma_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 17, 19, 3), dtype=np.uint8)
    converted = to_channels(pixels, 1)
    for image, gray in zip(pixels, converted):
        np.testing.assert_array_equal(gray[..., 0], np.asarray(Image.fromarray(image).convert("L")))
    np.testing.assert_array_equal(to_channels(converted, 3), np.repeat(converted, 3, axis=-1))


def test_images_are_resized_to_image_size(digit_folders):
    images, _ = load_dataset("folder", digit_folders["tinted"], "train", 32, channels=3)
    assert images.shape == (10 * PER_CLASS, 3, 32, 32)
    assert images.min() == -1.0 and images.max() <= 1.0


def test_the_decoded_folder_is_cached_and_decoded_again_after_an_edit(
    digit_folders, tmp_path, monkeypatch
):
    data = tmp_path / "digits"
    for label in ("3", "7"):
        (data / label).mkdir(parents=True)
        for path in sorted((digit_folders["gray"] / label).iterdir())[:5]:
            (data / label / path.name).write_bytes(path.read_bytes())
    decoded = []
    decode = folder_module._decode_all
    monkeypatch.setattr(
        folder_module, "_decode_all", lambda *args: decoded.append(1) or decode(*args)
    )
    first, labels = load_dataset("folder", data, "train", 28, channels=1)
    second, _ = load_dataset("folder", data, "train", 28, channels=1)
    assert len(decoded) == 1 and len(list((data / ".gx-cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(first, second)
    assert labels.tolist() == [0] * 5 + [1] * 5  # folders '3' and '7', sorted, are labels 0 and 1
    load_dataset("folder", data, "train", 32, channels=1)  # other settings: decoded again
    edited = sorted((data / "7").iterdir())[0]
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(edited)
    os.utime(edited, ns=(1, 1))  # a new time, whatever the file system's resolution
    changed, _ = load_dataset("folder", data, "train", 28, channels=1)
    assert len(decoded) == 3
    assert changed[5].max() == -1.0 and first[5].max() == 1.0


def test_a_read_only_folder_is_cached_in_the_user_cache(digit_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = tmp_path / "digits" / "5"
    data.mkdir(parents=True)
    for path in sorted((digit_folders["gray"] / "5").iterdir())[:3]:
        (data / path.name).write_bytes(path.read_bytes())
    data.chmod(0o555)
    data.parent.chmod(0o555)
    try:
        if os.access(data.parent, os.W_OK):
            # root writes anywhere: the folder cache is then beside the data, as when writable
            load_dataset("folder", data.parent, "train", 28, channels=1)
            assert len(list((data.parent / ".gx-cache").glob("*.npz"))) == 1
        else:
            load_dataset("folder", data.parent, "train", 28, channels=1)
            assert len(list((tmp_path / "home" / ".cache" / "gx" / "decoded").glob("*.npz"))) == 1
    finally:
        data.parent.chmod(0o755)
        data.chmod(0o755)


# --- every mistake is one message -------------------------------------------------------------


def write_png(path: Path, size: tuple[int, int] = (28, 28)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], 128, np.uint8)).save(path)


def bad_folder(tmp_path: Path, mistake: str) -> tuple[Path, dict, str]:
    """A folder with one mistake, the data settings that meet it, and the message's text."""
    root = tmp_path / "images"
    data = {"dataset": "folder", "root": str(root), "split": "train"}
    if mistake == "no images":
        (root / "notes").mkdir(parents=True)
        (root / "notes" / "readme.txt").write_text("no pictures here")
        return root, data, f"class folder {root / 'notes'} holds no images"
    if mistake == "empty folder":
        root.mkdir()
        return root, data, f"{root} holds no images"
    if mistake == "unreadable file":
        write_png(root / "0" / "a.png")
        (root / "1").mkdir()
        (root / "1" / "b.png").write_bytes(b"not a png at all")
        return root, data, f"{root / '1' / 'b.png'} is not an image Pillow can read"
    if mistake == "several sizes":
        write_png(root / "0" / "a.png")
        write_png(root / "1" / "b.png", (30, 30))
        data["image_size"] = None
        return root, data, f"{root / '1' / 'b.png'} is 30x30 but {root / '0' / 'a.png'} is 28x28"
    if mistake == "too many classes":
        for label in range(11):
            write_png(root / f"class{label:02d}" / "a.png")
        return root, data, "has 11 classes but model 'custom' has 10"
    if mistake == "no class folders":
        write_png(root / "a.png")
        return root, data, "reads class labels but"
    if mistake == "test split":
        write_png(root / "0" / "a.png")
        data["split"] = "test"
        return root, data, "an image folder has one split, train, not 'test'"
    if mistake == "no root":
        del data["root"]
        return root, data, "data.dataset is folder but no folder is named"
    raise AssertionError(mistake)


MISTAKES = [
    "no images",
    "empty folder",
    "unreadable file",
    "several sizes",
    "too many classes",
    "no class folders",
    "test split",
    "no root",
]


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_folder_mistake_is_one_error_line_and_nothing_is_written(tmp_path, mistake):
    root, data, message = bad_folder(tmp_path, mistake)
    settings = tiny_settings(data=data, train={"batch_size": 1})
    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(yaml.safe_dump(settings))
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    run = tmp_path / "run"
    status, output = gx("run", experiment, "--backend", "torch", "--device", "cpu", "--out", run)
    assert status == 2, output
    [line] = output.splitlines()
    assert line.startswith("error: ") and message in line and "Fix:" in line, line
    assert not run.exists()
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


def test_data_channels_must_match_the_model(tmp_path):
    settings = tiny_settings(data={"channels": 3})
    with pytest.raises(GxError, match="works on 1-channel images but data.channels is 3"):
        model_for(experiment_from_dict(settings, "tiny"))


# --- CIFAR-10 from its binary distribution ----------------------------------------------------

CIFAR_MEMBERS = [f"data_batch_{index}.bin" for index in range(1, 6)] + ["test_batch.bin"]


def write_cifar_archive(path: Path, records: int, compress: bool) -> dict[str, np.ndarray]:
    """An archive in CIFAR-10's binary format with ``records`` random records per file; returns
    each file's records, (records, 3073) uint8."""
    rng = np.random.default_rng(7)
    contents = {}
    with tarfile.open(path, "w:gz" if compress else "w") as archive:
        for name in CIFAR_MEMBERS:
            labels = rng.integers(0, 10, (records, 1), dtype=np.uint8)
            pixels = rng.integers(0, 256, (records, 3072), dtype=np.uint8)
            contents[name] = np.concatenate([labels, pixels], axis=1)
            data = contents[name].tobytes()
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return contents


def test_cifar10_records_become_rgb_images_with_their_labels(tmp_path):
    # Un-gzipped under its raw name: read by content, with no published md5 to match.
    contents = write_cifar_archive(tmp_path / "cifar-10-binary.tar", 4, compress=False)
    images, labels = load_dataset("cifar10", tmp_path, "test", 32, download=False, channels=3)
    record = contents["test_batch.bin"][1]
    assert (
        images.shape == (4, 3, 32, 32)
        and labels.tolist() == contents["test_batch.bin"][:, 0].tolist()
    )
    pixels = np.round((images[1] + 1) * 127.5).astype(np.uint8)
    # bytes 1..1024 are red, row by row; then green; then blue
    assert pixels[0, 0, 0] == record[1] and pixels[0, 0, 31] == record[32]
    assert pixels[0, 1, 0] == record[33] and pixels[1, 0, 0] == record[1025]
    assert pixels[2, 31, 31] == record[3072]
    train, train_labels = load_dataset("cifar10", tmp_path, "train", 32, download=False)
    assert train.shape == (20, 3, 32, 32)  # five files of 4; channels as published: RGB
    assert train_labels[4:8].tolist() == contents["data_batch_2.bin"][:, 0].tolist()
    gray, _ = load_dataset("cifar10", tmp_path, "both", 28, download=False, channels=1)
    assert gray.shape == (24, 1, 28, 28)


def test_cifar10_is_downloaded_and_md5_checked(tmp_path, serve_folder, monkeypatch):
    server = tmp_path / "server" / "cifar"
    server.mkdir(parents=True)
    archive = server / "cifar-10-binary.tar.gz"
    write_cifar_archive(archive, 3, compress=True)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    info = registry_module.DATASETS["cifar10"]
    test_archive = registry_module.PublishedFile("cifar-10-binary.tar.gz", md5)
    parts = {"train": (test_archive,), "test": (test_archive,)}
    monkeypatch.setitem(
        registry_module.DATASETS,
        "cifar10",
        registry_module.DatasetInfo(**{**info.__dict__, "parts": parts}),
    )
    url = serve_folder(tmp_path / "server", "cifar")
    data = tmp_path / "data"
    ensure_files("cifar10", data, "test", download=True, mirrors=[url])
    assert (data / archive.name).read_bytes() == archive.read_bytes()
    images, _ = load_dataset("cifar10", data, "test", 32, download=False)
    assert images.shape == (3, 3, 32, 32)
    (data / archive.name).write_bytes(archive.read_bytes()[:-10])  # truncated
    with pytest.raises(GxError, match="is not the published cifar-10-binary.tar.gz"):
        load_dataset("cifar10", data, "test", 32, download=False)


def test_a_damaged_cifar10_archive_is_one_message(tmp_path):
    (tmp_path / "cifar-10-binary.tar").write_bytes(b"garbage" * 100)
    with pytest.raises(GxError, match="is not a readable CIFAR-10 archive.*Fix:"):
        load_dataset("cifar10", tmp_path, "test", 32, download=False)
    with tarfile.open(tmp_path / "cifar-10-binary.tar", "w") as archive:
        member = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        member.size = 100
        archive.addfile(member, io.BytesIO(bytes(100)))
    with pytest.raises(GxError, match="not a whole number of 3073-byte records"):
        load_dataset("cifar10", tmp_path, "test", 32, download=False)


def test_the_cifar10_experiment_is_a_32px_colour_conditional_dcgan():
    experiment = load_experiment(experiment_file("cdcgan_cifar10"))
    model = model_for(experiment)
    assert model.image_shape == (3, 32, 32) and model.classes == 10
    assert (experiment.data.dataset, experiment.data.channels) == ("cifar10", 3)
    assert model.generator.parameter_count == 3_079_936
    assert model.discriminator.parameter_count == 2_644_608


# --- colour end to end on both backends -------------------------------------------------------


def colour_settings(root: Path, **train: object) -> dict:
    return {
        "name": "tinted",
        "seed": 0,
        "model": {
            "name": "cdcgan",
            "options": {"d_batch_norm": True, "leaky_slope": 0.2, "g_bn_eps": 0.8, "channels": 3},
        },
        "data": {"dataset": "folder", "root": str(root), "image_size": 28},
        "train": {"batch_size": 16, "max_steps": 4, "sample_every": 2, **train},
        "optimizer": {
            "generator": {"lr": 0.0004, "betas": [0.5, 0.999]},
            "discriminator": {"lr": 0.0004, "betas": [0.5, 0.999]},
        },
    }


@pytest.mark.cross_framework
@pytest.mark.parametrize("backend", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)])
@pytest.mark.slow
def test_a_colour_folder_trains_samples_and_evaluates(digit_folders, tmp_path, backend):
    experiment = tmp_path / "tinted.yaml"
    experiment.write_text(yaml.safe_dump(colour_settings(digit_folders["tinted"])))
    run = tmp_path / "run"
    status, output = gx("run", experiment, "--backend", backend, "--device", "cpu", "--out", run)
    assert status == 0, output
    grid, pixels = png(run / "samples" / "step-000004.png")
    assert grid.mode == "RGB" and pixels.shape == (10 * 30 + 2, 10 * 30 + 2, 3)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 4
    status, output = gx("eval", run, "--n", "200", "--backend", backend, "--device", "cpu")
    assert status == 0, output
    result = json.loads((run / "eval.json").read_text())
    assert result["real_images"] == "200 from the folder train split"
    # the classifier learnt the tinted digits themselves: a fixed 15% of them held out
    assert result["classifier"]["held_out_accuracy"] > 0.9
    assert "image folder" in result["classifier"]["split"]
    assert sum(result["class_histogram"]) == 200
    frames = Image.open(run / "samples.gif")
    assert frames.n_frames == 2 and frames.convert("RGB").size == grid.size
    # gx export: the colour generator as ONNX gives gx generate's images
    assert agrees(*export_and_compare(run, tmp_path, [3, 1, 4, 1, 5, 9, 2]))


@pytest.mark.jittor
@pytest.mark.cross_framework
@pytest.mark.slow
def test_parity_holds_on_colour_data(digit_folders):
    experiment = experiment_from_dict(colour_settings(digit_folders["tinted"]), "tinted")
    result = run_parity(experiment, 6, "cpu", None, 5)
    assert result.within, result.verdict_line()
