"""gx parity: both backends train the same, inside the float32 rounding floor.

Short lockstep runs keep CI fast; `gx parity EXPERIMENT --steps 60` is the full check. A
negative control proves the harness can fail: Jittor's own Adam rule must be caught.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gx.backends import get_backend
from gx.cli import main
from gx.config import load_experiment
from gx.parity import ParityResult, run_parity, within_floor
from gx.parity.lockstep import earliest_allowed, first_over

SMALL = ["data.split=test", "train.batch_size=16"]
# Step-0 layer outputs and gradients: float32 rounding accumulated through a network.
LAYER_TOLERANCE = 1e-5
# The first loss of the first step comes from one forward pass with no update before it. (The
# second one follows an Adam update, whose first step moves every weight by about +-lr whatever
# the gradient's size, so rounding-level gradients already differ by ~1e-4 in dcgan.)
FIRST_LOSS_TOLERANCE = 1e-5


def parity(name: str, steps: int, mnist_root, overrides=()) -> ParityResult:
    experiment = load_experiment(f"experiments/{name}.yaml", SMALL + list(overrides))
    return run_parity(experiment, steps, "cpu", str(mnist_root))


def experiment_order(name: str) -> str:
    return load_experiment(f"experiments/{name}.yaml").train.order


@pytest.mark.parametrize("name, steps", [("cgan", 12), ("gan", 12), ("cdcgan", 6), ("dcgan", 6)])
def test_reference_experiments_stay_within_the_floor(name, steps, mnist_root):
    result = parity(name, steps, mnist_root)
    assert result.steps == steps
    assert result.within, result.verdict_line()
    first = "d" if experiment_order(name) == "d_then_g" else "g"
    losses = result.losses
    assert abs(losses["torch"][first][0] - losses["jittor"][first][0]) <= FIRST_LOSS_TOLERANCE
    for row in result.layers:
        assert row.shapes["torch"] == row.shapes["jittor"] == row.spec_shape, row.layer
        assert row.output_rel <= LAYER_TOLERANCE, (row.layer, row.output_rel)
        for value in (row.grad_rel, row.param_grad_rel):
            assert value is None or value <= LAYER_TOLERANCE, (row.layer, value)


def test_cli_writes_report_and_exits_zero(tmp_path, mnist_root):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["parity", "experiments/gan.yaml", "--steps", "4",
                                       "--data-root", str(mnist_root), "--out", str(out),
                                       *[arg for item in SMALL for arg in ("--set", item)]])
    assert result.exit_code == 0, result.output
    assert "gan: WITHIN the float32 rounding floor over 4 steps" in result.output
    report = json.loads((out / "parity.json").read_text())
    assert report["within"] is True and report["steps"] == 4
    assert len(report["cross_difference"]) == len(report["floor_difference"]) == 4
    assert set(report["losses"]) == {"torch", "jittor", "torch_float64"}
    from PIL import Image

    with Image.open(out / "parity.png") as plot:
        assert plot.size == (1000, 700)


def test_jittor_native_adam_is_caught(mnist_root, monkeypatch):
    """Jittor's own Adam (eps effectively eps / sqrt(1 - beta2^t)) must leave the floor."""
    get_backend("jittor", "cpu")  # gx prepares Jittor's environment before it is imported
    import jittor as jt

    from gx.backends.jittor.backend import JittorBackend

    def native_adam(self, parameters, kind, lr, betas, eps, momentum):
        optimizer = jt.optim.Adam(list(parameters.values()), lr, eps=eps, betas=tuple(betas))
        optimizer.gx_kind, optimizer.gx_names = kind, list(parameters)
        return optimizer

    monkeypatch.setattr(JittorBackend, "optimizer", native_adam)
    result = parity("gan", 12, mnist_root)
    assert not result.within, result.verdict_line()
    assert result.cross[-1] > 1e-4


def crossing_at(steps: int, first: int, value: float = 0.5) -> list[float]:
    """A difference curve of ``steps`` steps that is ``value`` from step ``first`` on, 0 before."""
    return [0.0 if step < first else value for step in range(1, steps + 1)]


def test_first_over():
    assert first_over([1e-7, 2e-4, 5e-3], 1e-4) == 2
    assert first_over([1e-7, 1e-6], 1e-4) == 3  # never: one past the end
    assert first_over([1e-7, float("nan")], 1e-2) == 2  # NaN counts as over


def test_verdict_margin_is_two_steps_or_a_fifth_of_the_floors_crossing():
    assert earliest_allowed(3) == 1 and earliest_allowed(10) == 8
    assert earliest_allowed(21) == 16 and earliest_allowed(40) == 32
    floor = crossing_at(60, 21)
    assert within_floor(crossing_at(60, 16), floor)
    assert not within_floor(crossing_at(60, 15), floor)
    assert within_floor(crossing_at(60, 40), floor)  # later than the floor is always fine
    # Every threshold counts: the same curve, but only its largest values come early.
    early_blowup = [2e-4 if step < 30 else 0.5 for step in range(1, 61)]
    assert not within_floor([0.0] * 3 + early_blowup[3:], [0.0] * 20 + [2e-4] * 40)
    # Stock Jittor against the floor in ../shared/reference/jittor-vs-torch.md: caught at 1e-3.
    stock = [0.0] * 8 + [2e-4] * 7 + [2e-3] * 17 + [2e-2] * 28
    reference_floor = [0.0] * 11 + [2e-4] * 10 + [2e-3] * 14 + [2e-2] * 25
    assert first_over(stock, 1e-3) == 16 and first_over(reference_floor, 1e-3) == 22
    assert not within_floor(stock, reference_floor)
    late = ParityResult("x", 3, {}, [], {}, cross=[1e-7, 1e-6, 2e-4], floor=[1e-7, 1e-6, 1e-6])
    assert within_floor(late.cross, late.floor)


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_present(), reason="needs a CUDA GPU (run with -m cuda where one is)")
def test_cuda_parity(mnist_root):
    experiment = load_experiment("experiments/cgan.yaml", SMALL)
    result = run_parity(experiment, 12, "cuda", str(mnist_root))
    assert result.devices["torch"]["tf32"] is False
    assert result.within, result.verdict_line()
    assert np.isfinite(result.cross).all()
