"""The floor's reference on a lower instruction set: a child process that trains exactly as the
parent would, except for the kernels its capped environment makes PyTorch, oneDNN and MKL pick."""

from __future__ import annotations

import pytest
from support import LOWER_LEVEL, REPO_ROOT

from gx.backends import get_backend
from gx.config import load_experiment
from gx.errors import GxError
from gx.parity.isa import ChildTraining, lower_isa_environment
from gx.parity.lockstep import train_in_lockstep

STEPS = 5


def request(mnist_root, **changes) -> dict:
    experiment = load_experiment(
        REPO_ROOT / "experiments" / "gan.yaml", ["data.split=test", "train.batch_size=16"]
    )
    return {
        "experiment": experiment.to_dict(),
        "steps": STEPS,
        "threads": 1,
        "data_root": str(mnist_root),
        **changes,
    }


def test_each_x86_level_is_capped_one_level_lower():
    assert lower_isa_environment("AVX512") == {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    }
    assert lower_isa_environment("avx2")["ATEN_CPU_CAPABILITY"] == "default"
    assert lower_isa_environment("avx2")["ONEDNN_MAX_CPU_ISA"] == "AVX"
    for baseline in ("DEFAULT", "SVE256", "NO AVX", ""):
        assert lower_isa_environment(baseline) is None


@pytest.mark.slow
def test_the_child_without_a_cap_trains_exactly_as_this_process(mnist_root):
    """Same seed, data, noise and masks: only the kernels may differ between the two, so
    with none capped the losses agree to the last bit."""
    asked = request(mnist_root)
    answer = ChildTraining(asked, {}).answer(timeout=300)
    backend = get_backend("torch", "cpu")
    backend.strict_math()
    experiment = load_experiment(
        REPO_ROOT / "experiments" / "gan.yaml", ["data.split=test", "train.batch_size=16"]
    )
    here = train_in_lockstep(experiment, {"torch": backend}, {"torch": 1}, STEPS, str(mnist_root))
    assert answer["steps"] == here.steps == STEPS and answer["stopped_early"] == ""
    assert answer["losses"] == here.losses["torch"]
    assert answer["device"]["cpu_capability"] == backend.describe()["cpu_capability"]
    assert answer["device"]["threads"] == 1


@pytest.mark.slow
def test_the_capped_child_runs_the_lower_kernels(mnist_root):
    level = get_backend("torch", "cpu").describe()["cpu_capability"]
    lower = lower_isa_environment(level)
    if lower is None:  # no lower x86 level on this CPU: gx parity starts no child
        assert level not in LOWER_LEVEL
        return
    answer = ChildTraining(request(mnist_root), lower).answer(timeout=300)
    assert answer["device"]["cpu_capability"] == LOWER_LEVEL[level]
    assert (
        answer["device"]["environment"]["MKL_ENABLE_INSTRUCTIONS"]
        == lower["MKL_ENABLE_INSTRUCTIONS"]
    )
    assert len(answer["losses"]["d"]) == STEPS


@pytest.mark.slow
def test_a_failing_child_is_one_clear_error(tmp_path, mnist_root):
    child = ChildTraining(request(mnist_root, data_root=str(tmp_path / "missing")), {})
    with pytest.raises(GxError, match="the floor's PyTorch reference .* failed"):
        child.answer(timeout=300)
