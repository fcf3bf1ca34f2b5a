"""PyTorch and Jittor compiled from one spec give the same numbers, layer kind by layer kind.

For every layer kind and every reference network, both backends get the same seeded weights,
the same inputs and the same dropout masks. After three training-mode forward passes (which move
the batch-norm running statistics), one more pass in training or evaluation mode is compared:
the output, the gradients of a fixed scalar sum(output * r) with respect to every float input
and every parameter, the running statistics, and the real shape of every layer's output
against the spec's inference. Run with ``-s`` to print the worst difference per case.

Each Jittor value must be within its rounding floor: PyTorch float32's distance from PyTorch
float64 running the same case (gx.parity.agreement), so the verdict follows each case's own
rounding on whatever CPU runs it. The measure is max|a - b| / max(1, max|a|), a the PyTorch
float32 value: relative for large values, absolute below 1 (a gradient that is zero up to
rounding has no meaningful relative error).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from gx.backends import get_backend
from gx.backends.base import Backend
from gx.config import load_experiment, model_for
from gx.layers import LAYER_KINDS
from gx.models import build_model
from gx.parity.agreement import agrees, allowed_difference
from gx.spec import MaskSource, ModelSpec, example_inputs

pytestmark = pytest.mark.cross_framework

BATCH = 4
WEIGHT_SEED, MASK_SEED, DATA_SEED = 7, 11, 3
TRAINING_PASSES = 3

REPO_ROOT = Path(__file__).resolve().parents[1]
# (case, mode) -> the worst torch-vs-jittor difference as a share of what its floor allows
WORST: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def backends() -> dict[str, Backend]:
    return {
        "torch": get_backend("torch", "cpu"),
        "jittor": get_backend("jittor", "cpu"),
        "float64": get_backend("torch", "cpu", "float64"),
    }


@pytest.fixture(scope="module", autouse=True)
def print_worst_differences() -> Any:
    yield
    if WORST:
        print("\nworst torch-vs-jittor difference / what its rounding floor allows")
        for (case, mode), value in sorted(WORST.items()):
            print(f"  {case:<40} {mode:<6} {value:.2f}")


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))


def assert_agree(
    label: str,
    torch_values: dict[str, np.ndarray],
    jittor_values: dict[str, np.ndarray],
    exact_values: dict[str, np.ndarray],
) -> float:
    """Every named array agrees in shape and within its floor (PyTorch float32 against
    ``exact_values``, PyTorch float64); returns the worst share of the allowed difference."""
    assert sorted(torch_values) == sorted(jittor_values) == sorted(exact_values), label
    worst = 0.0
    for key, expected in torch_values.items():
        actual = jittor_values[key]
        assert actual.shape == expected.shape, f"{label} {key}: {actual.shape} vs {expected.shape}"
        assert np.all(np.isfinite(expected)) and np.all(np.isfinite(actual)), f"{label} {key}"
        difference = relative_difference(expected, actual)
        floor = relative_difference(expected, exact_values[key])
        assert agrees(difference, floor), (
            f"{label} {key}: differs by {difference:.2e}, its floor allows "
            f"{allowed_difference(floor):.2e}"
        )
        worst = max(worst, difference / allowed_difference(floor))
    return worst


def watched(backend: Backend, array: np.ndarray) -> Any:
    """A float input whose gradient is asked for (PyTorch must be told before the forward)."""
    tensor = backend.tensor(array)
    if backend.name == "torch":
        tensor.requires_grad_(True)
    return tensor


def probe(
    backend: Backend,
    spec: ModelSpec,
    batches: list[dict[str, np.ndarray]],
    weights: list[np.ndarray],
    training: bool,
    values: Mapping[str, float],
) -> tuple[dict[str, np.ndarray], dict[str, tuple]]:
    """Arrays to compare, and every layer's real per-sample output shape, for one backend;
    ``values``: parameters ('layer.name') set to a constant after initialization."""
    module = backend.compile(spec, WEIGHT_SEED, MaskSource(MASK_SEED))
    state = backend.state_tensors(module, spec)
    for key, value in values.items():
        backend.assign(state[key], np.full(tuple(state[key].shape), value, np.float32))
    with backend.no_grad():
        for batch in batches[:TRAINING_PASSES]:
            module({name: backend.tensor(array) for name, array in batch.items()})
    # copies in the backend's own precision: float64 stays float64 for the floor
    results = {
        f"state.{key}": backend.numpy(tensor).copy()
        for key, tensor in backend.state_tensors(module, spec).items()
    }

    backend.set_training(module, training)
    floats = [name for name, value in spec.inputs.items() if not value.is_label]
    last = batches[TRAINING_PASSES]
    inputs = {
        name: watched(backend, array) if name in floats else backend.tensor(array)
        for name, array in last.items()
    }
    values = module(inputs, keep_all=True)
    parameters = backend.state_tensors(module, spec, trainable_only=True)
    targets = {
        **{f"grad.input.{name}": inputs[name] for name in floats},
        **{f"grad.{key}": tensor for key, tensor in parameters.items()},
    }
    # sum(output * r), summed over the outputs of a network of several
    terms = [(values[name] * backend.tensor(r)).sum() for name, r in zip(spec.outputs, weights)]
    scalar = terms[0]
    for term in terms[1:]:
        scalar = scalar + term
    gradients = backend.gradients(scalar, list(targets.values())) if targets else []
    for name in spec.outputs:
        results[f"output.{name}"] = backend.numpy(values[name])
    for (key, target), gradient in zip(targets.items(), gradients):
        # PyTorch answers None for a tensor the scalar does not depend on; Jittor, zeros.
        results[key] = (
            np.zeros_like(backend.numpy(target)) if gradient is None else backend.numpy(gradient)
        )
    shapes = {name: tuple(value.shape)[1:] for name, value in values.items()}
    return results, shapes


def check_parity(
    backends: dict[str, Backend],
    label: str,
    spec: ModelSpec,
    training: bool,
    scale: float = 1.0,
    values: Mapping[str, float] | None = None,
) -> None:
    batches = [
        example_inputs(spec, BATCH, DATA_SEED + index) for index in range(TRAINING_PASSES + 1)
    ]
    for batch in batches:
        for name, value in spec.inputs.items():
            if not value.is_label:
                batch[name] = (batch[name] * scale).astype(np.float32)
    rng = np.random.default_rng(DATA_SEED)
    weights = [
        rng.standard_normal((BATCH, *value.shape)).astype(np.float32)
        for value in spec.output_values
    ]
    values = values or {}
    torch_results, torch_shapes = probe(backends["torch"], spec, batches, weights, training, values)
    jittor_results, jittor_shapes = probe(
        backends["jittor"], spec, batches, weights, training, values
    )
    exact_results, _ = probe(backends["float64"], spec, batches, weights, training, values)

    inferred = {
        **{name: value.shape for name, value in spec.inputs.items()},
        **{info.name: info.output.shape for info in spec.infos},
    }
    assert torch_shapes == inferred
    assert jittor_shapes == inferred
    mode = "train" if training else "eval"
    WORST[label, mode] = assert_agree(
        f"{label} ({mode})", torch_results, jittor_results, exact_results
    )


# case -> (spec, input scale, parameters set to constants), from every layer kind's own parity
# cases (gx.layers). Inputs are N(0, 1) times the scale; tanh and sigmoid get a wide range so
# their saturated tails count too.
LAYER_CASES: dict[str, tuple[ModelSpec, float, dict[str, float]]] = {
    name: (
        ModelSpec.from_dict(case.spec_dict(kind)),
        case.scale,
        {f"layer.{key}": value for key, value in case.values.items()},
    )
    for kind, definition in LAYER_KINDS.items()
    for name, case in definition.parity_cases.items()
}


def test_every_layer_kind_has_a_case() -> None:
    covered = {spec.infos[0].kind for spec, _, _ in LAYER_CASES.values()}
    assert covered == set(LAYER_KINDS)


@pytest.mark.jittor
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_kind_parity(backends: dict[str, Backend], case: str, training: bool) -> None:
    spec, scale, values = LAYER_CASES[case]
    check_parity(backends, case, spec, training, scale, values)


REFERENCE_NETWORKS = [
    (name, which)
    for name in ("cdcgan", "dcgan", "cgan", "gan")
    for which in ("generator", "discriminator")
]


@pytest.mark.jittor
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,which", REFERENCE_NETWORKS)
def test_reference_network_parity(
    backends: dict[str, Backend], name: str, which: str, training: bool
) -> None:
    model = build_model(name)
    spec = model.generator if which == "generator" else model.discriminator
    check_parity(backends, f"{name} {which}", spec, training)


# A discriminator with a class head beside its score, as AC-GAN code returns them: two outputs.
TWO_HEADS = ModelSpec.from_dict(
    {
        "inputs": {"image": [1, 8, 8]},
        "layers": [
            {"name": "conv", "kind": "conv2d", "out": 4, "kernel": 4, "stride": 2, "padding": 1},
            {"name": "act", "kind": "leaky_relu", "slope": 0.2},
            {"name": "features", "kind": "flatten"},
            {"name": "score", "kind": "linear", "out": 1},
            {"name": "class_logits", "kind": "linear", "input": "features", "out": 5},
        ],
        "output": ["score", "class_logits"],
    }
)


@pytest.mark.jittor
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_every_output_of_a_network_of_several_is_compared(
    backends: dict[str, Backend], training: bool
) -> None:
    check_parity(backends, "two heads", TWO_HEADS, training)


@pytest.mark.jittor
@pytest.mark.parametrize("case", ["dropout", "dropout2d"])
def test_dropout_case_really_drops_in_training_only(
    backends: dict[str, Backend], case: str
) -> None:
    """Guards the dropout parity cases above against comparing two identities."""
    spec, _, _ = LAYER_CASES[case]
    x = np.ones((BATCH, *spec.inputs["x"].shape), np.float32)
    for backend in backends.values():
        module = backend.compile(spec, WEIGHT_SEED, MaskSource(MASK_SEED))
        dropped = backend.numpy(module({"x": backend.tensor(x)}))
        assert 0.2 < np.mean(dropped == 0) < 0.6
        backend.set_training(module, False)
        np.testing.assert_array_equal(backend.numpy(module({"x": backend.tensor(x)})), x)


@pytest.mark.jittor
def test_dcgan_dense_summary_in_jittor_is_all_ok() -> None:
    from gx.cli import main

    experiment = REPO_ROOT / "experiments" / "dcgan_dense.yaml"
    result = CliRunner().invoke(main, ["summary", str(experiment), "--backend", "jittor"])
    assert result.exit_code == 0, result.output
    model = model_for(load_experiment(experiment))
    rows = sum(
        len(spec.inputs) + len(spec.nodes) for spec in (model.generator, model.discriminator)
    )
    assert sum(1 for line in result.output.splitlines() if "  ok " in line) == rows == 21
    assert "MISMATCH" not in result.output
