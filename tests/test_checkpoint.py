"""Checkpoints are plain safetensors + JSON that any backend writes and any backend reads.

A PyTorch checkpoint restored in Jittor (and the reverse) must give the same generator outputs,
the same optimizer state, and the same next training step; a checkpoint of another model, or a
damaged one, must be refused with one clear message.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file

from gx.backends import get_backend
from gx.backends.base import Backend
from gx.checkpoint import FORMAT, Checkpoint, load_checkpoint, save_checkpoint
from gx.config import OptimizerSettings
from gx.errors import GxError
from gx.losses.adversarial import floored_bce
from gx.models import GanModel, build_model
from gx.parity.agreement import agrees, allowed_difference
from gx.spec import example_inputs

pytestmark = pytest.mark.cross_framework

BATCH, SEED = 4, 21
ADAM = OptimizerSettings(kind="adam", lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
FILES = {
    "generator.safetensors",
    "discriminator.safetensors",
    "optimizer_g.safetensors",
    "optimizer_d.safetensors",
    "state.json",
}


@pytest.fixture(scope="module")
def backends() -> dict[str, Backend]:
    return {
        "torch": get_backend("torch", "cpu"),
        "jittor": get_backend("jittor", "cpu"),
        "float64": get_backend("torch", "cpu", "float64"),
    }


@pytest.fixture(scope="module")
def torch_backend() -> Backend:
    return get_backend("torch", "cpu")


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(1, max|a|), as in test_backend_parity."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a))))) if a.size else 0.0


def assert_agree(values: dict[str, np.ndarray]) -> None:
    """Jittor's value within the floor of PyTorch's: PyTorch float32 against float64
    (gx.parity.agreement)."""
    floor = difference(values["torch"], values["float64"])
    gap = difference(values["torch"], values["jittor"])
    assert agrees(gap, floor), f"{gap:.2e} apart, the floor allows {allowed_difference(floor):.2e}"


def gx_weights(backend: Backend, module: Any, spec: Any) -> dict[str, np.ndarray]:
    """Every parameter and buffer in the backend's own float type (float64 kept as it is)."""
    return {
        key: backend.numpy(tensor) for key, tensor in backend.state_tensors(module, spec).items()
    }


class Gan:
    """A model's two networks and their optimizers in one backend."""

    def __init__(self, backend: Backend, model: GanModel) -> None:
        self.backend, self.model = backend, model
        self.generator = backend.compile(model.generator, [SEED, 0])
        self.discriminator = backend.compile(model.discriminator, [SEED, 1])
        self.opt_g = backend.optimizer(
            backend.state_tensors(self.generator, model.generator, trainable_only=True), ADAM
        )
        self.opt_d = backend.optimizer(
            backend.state_tensors(self.discriminator, model.discriminator, trainable_only=True),
            ADAM,
        )

    def fake(self, z: np.ndarray) -> Any:
        return self.generator({"z": self.backend.tensor(z)})

    def train_generator(self, z: np.ndarray) -> None:
        score = self.discriminator({"image": self.fake(z)})
        self.backend.minimize(self.opt_g, floored_bce(self.backend, score, 1.0))

    def train_discriminator(self, real: np.ndarray, z: np.ndarray) -> None:
        b = self.backend
        real_loss = floored_bce(b, self.discriminator({"image": b.tensor(real)}), 1.0)
        fake_loss = floored_bce(b, self.discriminator({"image": b.detach(self.fake(z))}), 0.0)
        b.minimize(self.opt_d, (real_loss + fake_loss) / 2)

    def checkpoint(self, step: int) -> Checkpoint:
        b, m = self.backend, self.model
        return Checkpoint(
            m,
            b.get_weights(self.generator, m.generator),
            b.get_weights(self.discriminator, m.discriminator),
            b.get_optimizer_state(self.opt_g),
            b.get_optimizer_state(self.opt_d),
            {"step": step, "epoch": 0, "backend": b.name},
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        b, m = self.backend, self.model
        b.load_weights(self.generator, m.generator, checkpoint.generator, "the checkpoint")
        b.load_weights(
            self.discriminator, m.discriminator, checkpoint.discriminator, "the checkpoint"
        )
        b.load_optimizer_state(self.opt_g, checkpoint.optimizer_g)
        b.load_optimizer_state(self.opt_d, checkpoint.optimizer_d)


def batches(count: int) -> list[dict[str, np.ndarray]]:
    model = build_model("gan")
    return [
        {
            "z": example_inputs(model.generator, BATCH, 100 + index)["z"],
            "real": np.tanh(example_inputs(model.discriminator, BATCH, 200 + index)["image"]),
        }
        for index in range(count)
    ]


@pytest.mark.jittor
@pytest.mark.parametrize("writer,reader", [("torch", "jittor"), ("jittor", "torch")])
@pytest.mark.slow
def test_checkpoint_moves_between_backends(
    backends: dict[str, Backend], tmp_path: Path, writer: str, reader: str
) -> None:
    model = build_model("gan")
    source = Gan(backends[writer], model)
    steps = batches(3)
    for batch in steps[:2]:
        source.train_discriminator(batch["real"], batch["z"])
        source.train_generator(batch["z"])
    save_checkpoint(tmp_path / "checkpoint", source.checkpoint(step=2))

    loaded = load_checkpoint(tmp_path)  # a run folder holding checkpoint/
    assert loaded.model == model
    assert loaded.state == {"step": 2, "epoch": 0, "backend": writer}
    target = Gan(backends[reader], loaded.model)
    target.restore(loaded)
    exact = Gan(backends["float64"], loaded.model)  # the reader's computation without rounding
    exact.restore(loaded)
    gans = {writer: source, reader: target, "float64": exact}

    # Weights and batch-norm statistics arrive exactly; optimizer state round-trips exactly.
    for saved, network, spec in (
        (loaded.generator, target.generator, model.generator),
        (loaded.discriminator, target.discriminator, model.discriminator),
    ):
        restored = backends[reader].get_weights(network, spec)
        assert restored.keys() == saved.keys()
        for key in saved:
            np.testing.assert_array_equal(restored[key], saved[key])
    for saved, optimizer in (
        (loaded.optimizer_g, target.opt_g),
        (loaded.optimizer_d, target.opt_d),
    ):
        again = backends[reader].get_optimizer_state(optimizer)
        assert again.keys() == saved.keys()
        assert float(again["step"]) == 2.0
        for key in saved:
            np.testing.assert_array_equal(
                np.asarray(again[key], np.float32).reshape(-1),
                np.asarray(saved[key], np.float32).reshape(-1),
            )

    # The restored generator draws the same images, in evaluation and in training mode.
    z = steps[2]["z"]
    for training in (False, True):
        images = {}
        for name, gan in gans.items():
            gan.backend.set_training(gan.generator, training)
            with gan.backend.no_grad():
                images[name] = gan.backend.numpy(gan.fake(z))
        assert_agree(images)

    # And the next discriminator step (Adam, continuing from the restored moments) agrees.
    for gan in gans.values():
        gan.train_discriminator(steps[2]["real"], z)
    after = {
        name: gx_weights(gan.backend, gan.discriminator, model.discriminator)
        for name, gan in gans.items()
    }
    for key, value in after[writer].items():
        assert_agree({name: weights[key] for name, weights in after.items()})
        assert not np.array_equal(value, loaded.discriminator[key])


def test_files_are_plain_safetensors_and_json(torch_backend: Backend, tmp_path: Path) -> None:
    gan = Gan(torch_backend, build_model("gan"))
    batch = batches(1)[0]
    gan.train_discriminator(batch["real"], batch["z"])
    gan.train_generator(batch["z"])
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, gan.checkpoint(step=1))
    save_checkpoint(folder, gan.checkpoint(step=1))  # replacing one leaves no staging folders

    assert {path.name for path in tmp_path.iterdir()} == {"checkpoint"}
    assert {path.name for path in folder.iterdir()} == FILES
    assert not [path for path in tmp_path.rglob("*") if path.suffix in (".pt", ".pkl", ".pth")]
    document = json.loads((folder / "state.json").read_text())
    assert document["format"] == FORMAT
    assert document["step"] == 1 and document["backend"] == "torch"
    assert document["model"]["name"] == "gan"
    for name in FILES - {"state.json"}:
        raw = (folder / name).read_bytes()
        # safetensors: an 8-byte little-endian header length, a JSON header, raw little-endian
        # tensor bytes; nothing that could execute code on load.
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        tensors = {key: entry for key, entry in header.items() if key != "__metadata__"}
        dtypes = {entry["dtype"] for key, entry in tensors.items() if key != "step"}
        assert dtypes == {"F32"}
        # the file is exactly the header and the tensors' bytes: no room for anything else
        assert max(entry["data_offsets"][1] for entry in tensors.values()) == len(raw) - 8 - length
    weights = load_file(str(folder / "generator.safetensors"))
    assert set(weights) == set(build_model("gan").generator.state_shapes())
    assert load_file(str(folder / "optimizer_g.safetensors"))["step"].shape == ()


def test_weights_of_another_model_are_refused(torch_backend: Backend) -> None:
    backend = torch_backend
    model = build_model("gan")
    generator = backend.compile(model.generator, 0)
    wider = build_model("gan", {"image_size": 32})
    wider_weights = backend.get_weights(backend.compile(wider.generator, 0), wider.generator)
    with pytest.raises(GxError) as caught:
        backend.load_weights(generator, model.generator, wider_weights, "checkpoint 'run'")
    message = str(caught.value)
    assert "checkpoint 'run' does not fit this model" in message
    assert "'fc5.weight' has shape (1024, 1024), the model needs (784, 1024)" in message

    other = build_model("dcgan")
    other_weights = backend.get_weights(backend.compile(other.generator, 0), other.generator)
    with pytest.raises(GxError, match=r"does not fit this model \(missing fc1.weight\)"):
        backend.load_weights(generator, model.generator, other_weights, "checkpoint 'run'")
    extra = {
        **backend.get_weights(generator, model.generator),
        "fc9.weight": np.zeros(3, np.float32),
    }
    with pytest.raises(GxError, match=r"unexpected fc9.weight"):
        backend.load_weights(generator, model.generator, extra, "checkpoint 'run'")


@pytest.fixture
def saved(torch_backend: Backend, tmp_path: Path) -> Path:
    folder = tmp_path / "run" / "checkpoint"
    save_checkpoint(folder, Gan(torch_backend, build_model("gan")).checkpoint(step=0))
    return folder


@pytest.mark.parametrize(
    "damage",
    [
        "not json {",
        '{"format": "gx-checkpoint-1"',
        "[1, 2, 3]",
        '{"format": "other-format"}',
        '{"format": "gx-checkpoint-1", "step": 0}',
    ],
)
def test_damaged_state_json_is_refused(saved: Path, damage: str) -> None:
    (saved / "state.json").write_text(damage)
    with pytest.raises(GxError) as caught:
        load_checkpoint(saved.parent)
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot be read" in message and "damaged or not a gx checkpoint" in message


@pytest.mark.parametrize("name", ["generator.safetensors", "optimizer_d.safetensors"])
def test_damaged_or_missing_array_file_is_refused(saved: Path, name: str) -> None:
    path = saved / name
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(GxError, match="damaged or not a gx checkpoint"):
        load_checkpoint(saved)
    path.unlink()
    with pytest.raises(GxError, match="damaged or not a gx checkpoint"):
        load_checkpoint(saved)


def test_missing_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GxError, match="does not exist; pass a run folder made by 'gx run'"):
        load_checkpoint(tmp_path / "no-such-run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GxError, match="holds no gx checkpoint"):
        load_checkpoint(tmp_path / "empty")
