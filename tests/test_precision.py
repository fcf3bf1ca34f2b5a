"""train.precision: bf16 and fp16 beside the rule tests/test_semantics.py pins (gx.precision).

The refusals, the framework's own bf16 kernels against gx's emulation of the same rule, fp16's
loss scaling, and checkpoints that stay float32 and backend-neutral: a bf16 run continues in
float32 and on the other framework, within float32's rounding floor.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from support import experiment_file
from tiny import tiny_experiment

import gx.backends
from gx.backends import get_backend
from gx.backends.base import Backend
from gx.checkpoint import load_checkpoint
from gx.cli import main
from gx.config import OptimizerSettings, load_experiment
from gx.errors import GxError
from gx.parity import majority_within
from gx.parity.agreement import agrees
from gx.parity.lockstep import continuation_parity
from gx.precision import UNIT_ROUNDOFFS, bf16_cpu_flags
from gx.spec import ModelSpec
from gx.train.loss_scale import GROWTH_INTERVAL, INITIAL_SCALE, LossScale
from gx.train.run import RunOptions, run_experiment

pytestmark = pytest.mark.cross_framework

BACKENDS = ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]
SMALL = ["data.split=test", "train.batch_size=16"]


@pytest.fixture(params=BACKENDS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def bf16_format(values: np.ndarray) -> np.ndarray:
    """Whether each float32 value is a bf16 number (its lower 16 bits are zero)."""
    return (np.asarray(values, np.float32).view(np.uint32) & 0xFFFF) == 0


# -- the setting and its refusals ---------------------------------------------------------------


def test_precision_is_float32_unless_asked_and_float32_describes_itself_as_before(name):
    assert load_experiment(experiment_file("cdcgan")).train.precision == "float32"
    described = get_backend(name, "cpu").describe()
    assert "precision" not in described and "low_precision_kernels" not in described
    described = get_backend(name, "cpu", precision="bf16").describe()
    native = name == "torch" and bool(bf16_cpu_flags())
    assert described["precision"] == "bf16"
    assert described["low_precision_kernels"] == ("native" if native else "emulated")
    with pytest.raises(GxError, match="unknown precision 'fp8'; use one of: float32, bf16, fp16"):
        get_backend(name, "cpu", precision="fp8")


def cli(*arguments: str) -> Result:
    return CliRunner().invoke(main, list(arguments))


@pytest.mark.parametrize("command", ["bench", "parity"])
def test_fp16_on_a_cpu_is_refused_with_one_line(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(command, experiment_file("gan"), "--device", "cpu", "--precision", "fp16")
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: train.precision fp16 runs on CUDA")
    assert "use --set train.precision=bf16 on a CPU, or --device cuda" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no report folder


@pytest.mark.slow
def test_an_emulating_run_says_so_on_start(tmp_path, mnist_root):
    result = cli(
        "run", experiment_file("gan"), "--backend", "torch", "--device", "cpu",
        "--data-root", str(mnist_root), "--max-steps", "1", "--out", str(tmp_path / "run"),
        "--set", "data.split=test", "--set", "train.batch_size=16",
        "--set", "train.precision=bf16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: bf16")]
    if bf16_cpu_flags():  # the framework's own bf16 kernels: nothing to say
        assert notes == []
    else:
        assert len(notes) == 1 and "this CPU has no avx512_bf16 or amx_bf16" in notes[0]
        assert "slower than float32, not faster" in notes[0]


# -- native kernels -----------------------------------------------------------------------------


def conv_network() -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "inputs": {"x": [4, 8, 8]},
            "layers": [
                {"name": "down", "kind": "conv2d", "out": 16, "kernel": 4, "stride": 2,
                 "padding": 1},
                {"name": "act", "kind": "leaky_relu"},
                {"name": "up", "kind": "conv_transpose2d", "out": 8, "kernel": 4, "stride": 2,
                 "padding": 1},
                {"name": "flat", "kind": "flatten"},
                {"name": "score", "kind": "linear", "out": 3},
            ],
        }
    )  # fmt: skip


def forward_and_gradients(backend: Backend, spec: ModelSpec) -> dict[str, np.ndarray]:
    module = backend.compile(spec, 2)
    rng = np.random.default_rng(5)
    x = backend.tensor(rng.standard_normal((6, 4, 8, 8)).astype(np.float32))
    output = module({"x": x})
    probe = backend.tensor(rng.standard_normal((6, 3)).astype(np.float32))
    parameters = backend.state_tensors(module, spec, trainable_only=True)
    gradients = backend.gradients((output * probe).sum(), list(parameters.values()))
    return {"output": backend.numpy(output)} | {
        key: backend.numpy(gradient) for key, gradient in zip(parameters, gradients)
    }


def test_torch_native_bf16_kernels_compute_the_rule(monkeypatch):
    """The framework's bf16 kernels (what torch runs on CPUs with bf16 units and on GPUs) give
    gx's numbers: bf16 values, equal to the emulation's but where the float32 sums, in another
    order, land on the other side of a rounding boundary (one bf16 unit)."""
    from gx.backends.torch.backend import TorchBackend

    spec = conv_network()
    emulated = forward_and_gradients(TorchBackend("cpu", precision="bf16"), spec)
    monkeypatch.setattr(TorchBackend, "native_low_precision", lambda self: True)
    native_backend = TorchBackend("cpu", precision="bf16")
    assert native_backend.describe()["low_precision_kernels"] == "native"
    native = forward_and_gradients(native_backend, spec)
    for key, value in native.items():
        expected = emulated[key]
        assert value.dtype == np.float32 and bf16_format(value).all(), key
        # one bf16 unit of each value, or of the largest where a sum cancels to near zero
        unit = 2.0**-7 * np.abs(expected) + 2.0**-14 * np.abs(expected).max()
        assert np.all(np.abs(value - expected) <= unit), key
        assert np.mean(value == expected) > 0.95, key


def test_spectral_normalization_stays_emulated_under_native_kernels():
    """Its power iteration reads the weight in float32 (the rule); only plain products run the
    framework's bf16 kernels."""
    import torch

    from gx.backends.torch.layers import SpectralLinear
    from gx.backends.torch.precision import LowPrecisionLayer

    spectral = LowPrecisionLayer(SpectralLinear(4, 3, True), torch.bfloat16, True, torch.float32)
    assert not spectral.native
    assert LowPrecisionLayer(torch.nn.Linear(4, 3), torch.bfloat16, True, torch.float32).native


# -- fp16's loss scale --------------------------------------------------------------------------


def test_loss_scale_follows_grad_scalers_rule():
    scale = LossScale()
    assert scale.scale == INITIAL_SCALE == 2.0**16
    for _ in range(GROWTH_INTERVAL - 1):
        scale.update(True)
    assert scale.scale == 2.0**16 and scale.finite_in_a_row == GROWTH_INTERVAL - 1
    scale.update(True)
    assert scale.scale == 2.0**17 and scale.finite_in_a_row == 0
    scale.update(True)
    scale.update(False)
    assert scale.scale == 2.0**16 and scale.finite_in_a_row == 0 and scale.skipped == 1
    assert LossScale.from_state(json.loads(json.dumps(scale.state()))) == scale


def linear_and_adam(backend: Backend) -> tuple[Any, ModelSpec, Any]:
    spec = ModelSpec.from_dict({"inputs": {"x": [5]}, "layers": [
        {"name": "fc", "kind": "linear", "out": 3}]})  # fmt: skip
    module = backend.compile(spec, 1)
    parameters = backend.state_tensors(module, spec, trainable_only=True)
    return module, spec, backend.optimizer(parameters, OptimizerSettings(lr=1e-3))


@pytest.mark.slow
def test_minimize_with_a_loss_scale_takes_the_same_update_or_skips_it(name):
    backend = get_backend(name, "cpu")
    x = backend.tensor(np.random.default_rng(9).standard_normal((4, 5)).astype(np.float32))
    plain, spec, plain_optimizer = linear_and_adam(backend)
    scaled, _, scaled_optimizer = linear_and_adam(backend)
    assert backend.minimize(plain_optimizer, (plain({"x": x}) ** 2).mean()) is True
    assert backend.minimize(scaled_optimizer, (scaled({"x": x}) ** 2).mean(), 2.0**16) is True
    # scaling by a power of two and back is exact: the same update, bit for bit
    after = backend.get_weights(scaled, spec)
    for key, value in backend.get_weights(plain, spec).items():
        np.testing.assert_array_equal(after[key], value)
    state = backend.get_optimizer_state(scaled_optimizer)
    # gradients that overflow: the update is skipped, weights and Adam's state stay
    huge = (scaled({"x": x}) * 1e30).sum()
    assert backend.minimize(scaled_optimizer, huge, 2.0**100) is False
    for key, value in backend.get_weights(scaled, spec).items():
        np.testing.assert_array_equal(value, after[key])
    for key, value in backend.get_optimizer_state(scaled_optimizer).items():
        np.testing.assert_array_equal(value, state[key])
    assert backend.minimize(scaled_optimizer, (scaled({"x": x}) ** 2).mean(), 2.0**15) is True
    assert float(backend.get_optimizer_state(scaled_optimizer)["step"]) == 2


@pytest.mark.slow
def test_fp16_runs_keep_their_loss_scales_across_a_resume(name, tmp_path, mnist_root, monkeypatch):
    # fp16 is refused on CPUs (no fast arithmetic there); the run's bookkeeping is not
    # device-specific, so this lets it through to train the tiny experiment
    monkeypatch.setattr(gx.backends, "check_device", lambda precision, device: None)
    experiment = tiny_experiment(train={"max_steps": 3, "precision": "fp16"})
    folder = tmp_path / "run"
    options = RunOptions(backend=name, device="cpu", data_root=str(mnist_root), progress=False)
    run_experiment(experiment, replace(options, out=str(folder)))
    saved = load_checkpoint(folder).state
    assert saved["backend"]["precision"] == "fp16"
    expected = {"scale": INITIAL_SCALE, "finite_in_a_row": 3, "skipped": 0}
    assert saved["loss_scale"] == {"generator": expected, "discriminator": expected}
    longer = tiny_experiment(train={"max_steps": 5, "precision": "fp16"})
    run_experiment(longer, replace(options, resume=str(folder)))
    resumed = load_checkpoint(folder).state["loss_scale"]
    assert resumed["generator"]["finite_in_a_row"] == resumed["discriminator"]["finite_in_a_row"]
    assert resumed["generator"]["finite_in_a_row"] == 5


# -- checkpoints across precisions and frameworks ------------------------------------------------

CHECKPOINT_STEP = 3
STEPS_AFTER = 12  # cgan's floor is crossed late (tests/test_cross_resume.py)
SEEDS = 3


def cgan(max_steps: int, precision: str, seed: int = 0):
    settings = SMALL + [f"train.max_steps={max_steps}", f"train.precision={precision}"]
    return load_experiment(experiment_file("cgan"), settings + [f"seed={seed}"])


def gx_resume(folder: Path, backend: str, precision: str, mnist_root: Path) -> Result:
    total = CHECKPOINT_STEP + STEPS_AFTER
    return cli(
        "run", experiment_file("cgan"), "--backend", backend, "--device", "cpu",
        "--data-root", str(mnist_root), "--resume", str(folder), "--max-steps", str(total),
        *[part for setting in SMALL for part in ("--set", setting)],
        "--set", f"train.precision={precision}",
    )  # fmt: skip


@pytest.mark.jittor
@pytest.mark.parametrize(
    "writer, reader, precision",
    [("torch", "jittor", "float32"), ("jittor", "torch", "bf16")],
    ids=["torch-bf16-to-jittor-float32", "jittor-bf16-to-torch-bf16"],
)
@pytest.mark.slow
def test_a_bf16_run_continues_in_float32_and_on_the_other_framework(
    writer, reader, precision, tmp_path, mnist_root
):
    total = CHECKPOINT_STEP + STEPS_AFTER
    firsts = []
    for seed in range(SEEDS):
        folder = tmp_path / f"seed-{seed}"
        options = RunOptions(writer, "cpu", str(mnist_root), str(folder), progress=False)
        run_experiment(cgan(CHECKPOINT_STEP, "bf16", seed), options)
        firsts.append(folder)
    checkpoint = load_checkpoint(firsts[0])
    assert checkpoint.state["backend"]["precision"] == "bf16"
    for part in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
        arrays = {key: value for key, value in getattr(checkpoint, part).items() if key != "step"}
        assert all(array.dtype == np.float32 for array in arrays.values()), part
    # master weights: float32 values, not bf16 ones
    assert not bf16_format(checkpoint.generator["fc1.weight"]).all()

    continued = tmp_path / "continued"
    shutil.copytree(firsts[0], continued)
    result = gx_resume(continued, reader, precision, mnist_root)
    assert result.exit_code == 0, result.output
    assert f"continuing steps {CHECKPOINT_STEP + 1}.. on {reader}" in result.stderr
    segments = load_checkpoint(continued).state["segments"]
    assert [
        (entry["backend"]["backend"], entry["backend"].get("precision", "float32"))
        for entry in segments
    ] == [(writer, "bf16"), (reader, precision)]

    # both frameworks continue each bf16 checkpoint in the new precision, beside the floor's
    # references (gx parity's harness); the command trains what the harness trains
    runs = [
        continuation_parity(
            cgan(total, precision, seed), load_checkpoint(firsts[seed]), total, "cpu",
            str(mnist_root),
        )
        for seed in range(SEEDS)
    ]  # fmt: skip
    later = [
        json.loads(line)
        for line in (continued / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["step"] > CHECKPOINT_STEP
    ]
    assert [line["d_loss"] for line in later] == runs[0].losses[reader]["d"]
    verdict = "; ".join(run.summary() for run in runs)
    # the first continued step: one pass from the restored state, within that step's floor
    unit = UNIT_ROUNDOFFS[precision]
    assert all(agrees(run.cross[0], run.floor[0], unit) for run in runs), verdict
    assert majority_within([(run.cross, run.floor) for run in runs]), verdict
