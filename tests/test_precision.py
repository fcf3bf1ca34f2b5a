"""train.precision: bf16 and fp16 beside the rule tests/test_semantics.py pins (gx.precision).

The refusals, the framework's own bf16 kernels against gx's emulation of the same rule, and
fp16's loss scaling, kept across a resume.
"""

from __future__ import annotations

import json
from dataclasses import replace
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
from gx.config import load_experiment
from gx.errors import GxError
from gx.precision import bf16_cpu_flags
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

    assert not LowPrecisionLayer(SpectralLinear(4, 3, True), torch.bfloat16, True).native
    assert LowPrecisionLayer(torch.nn.Linear(4, 3), torch.bfloat16, True).native


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
    return module, spec, backend.optimizer(parameters, "adam", 1e-3, (0.5, 0.999), 1e-8, 0.0)


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
