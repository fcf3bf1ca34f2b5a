"""Step 0 of a parity report: every layer's output and gradient, per backend, against the spec.

Each network is compiled afresh in both backends (so the probe never touches the training
state), fed the same inputs, and a scalar probe sum(output * r) with a fixed random r (summed
over the outputs of a network of several) is differentiated with respect to every layer output
and every parameter. PyTorch float64 runs the
same probe: its distance from PyTorch float32 is each value's rounding floor, and a layer agrees
when the backends differ by no more than gx.parity.agreement allows for that floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gx.backends.base import Backend
from gx.parity.agreement import agrees
from gx.precision import FLOAT32, UNIT_ROUNDOFFS, in_format, in_low_precision
from gx.spec import MaskSource, ModelSpec, example_inputs

PROBE_BATCH = 8


@dataclass
class LayerDiff:
    network: str
    layer: str
    kind: str
    spec_shape: tuple[int, ...]
    shapes: dict[str, tuple[int, ...]]
    # the precision's unit roundoff: a bf16 or fp16 value is not promised closer than that
    unit_roundoff: float
    # bf16 / fp16, a layer gx.precision names: backend -> whether its outputs are values of the
    # format, as the rule makes them (empty for every other layer)
    formats: dict[str, bool]
    output_abs: float
    output_rel: float
    grad_abs: float | None  # gradient w.r.t. the layer's output (None: not differentiable)
    grad_rel: float | None
    param_grad_abs: float | None  # gradients of the layer's parameters (None: no parameters)
    param_grad_rel: float | None
    # PyTorch float32's relative distance from float64 for each of the three (None as above)
    output_floor: float
    grad_floor: float | None
    param_grad_floor: float | None

    @property
    def follows_precision(self) -> bool:
        return all(self.formats.values())

    @property
    def agrees(self) -> bool:
        """Every relative difference within what its floor allows (gx.parity.agreement), and
        outputs in the precision's format where the rule rounds them."""
        if not self.follows_precision:
            return False
        pairs = [
            (self.output_rel, self.output_floor),
            (self.grad_rel, self.grad_floor),
            (self.param_grad_rel, self.param_grad_floor),
        ]
        return all(
            agrees(difference, floor, self.unit_roundoff)
            for difference, floor in pairs
            if difference is not None and floor is not None
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agrees": self.agrees}


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max |a - b|, max |a - b| / max |a|) in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    absolute = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return absolute, absolute / scale if scale > 0 else absolute


def _depends_on_parameters(spec: ModelSpec) -> list[str]:
    """Layers whose output a gradient can reach (inputs carry no gradient in the probe)."""
    reached: set[str] = set()
    for info in spec.infos:
        if info.parameters or any(source in reached for source in info.inputs):
            reached.add(info.name)
    return [info.name for info in spec.infos if info.name in reached]


def _probe(
    backend: Backend,
    spec: ModelSpec,
    seed: int,
    inputs: dict[str, np.ndarray],
    weights: list[np.ndarray],
) -> dict[str, dict[str, np.ndarray | None]]:
    module = backend.compile(spec, seed, MaskSource(seed))
    tensors = {}
    for name, array in inputs.items():
        tensors[name] = backend.tensor(array)
    outputs = module(tensors, keep_all=True)
    terms = [
        (outputs[name] * backend.tensor(weight)).sum()
        for name, weight in zip(spec.outputs, weights)
    ]
    scalar = terms[0]
    for term in terms[1:]:  # every output of a network of several counts in the probe
        scalar = scalar + term
    layer_names = [info.name for info in spec.infos]
    differentiable = _depends_on_parameters(spec)
    grads = backend.gradients(scalar, [outputs[name] for name in differentiable])
    parameters = backend.state_tensors(module, spec, trainable_only=True)
    param_grads = backend.gradients(scalar, list(parameters.values()))
    result: dict[str, dict[str, Any]] = {}
    for name in layer_names:
        result[name] = {"output": backend.numpy(outputs[name]), "grad": None, "params": []}
    for name, grad in zip(differentiable, grads):
        result[name]["grad"] = None if grad is None else backend.numpy(grad)
    for key, grad in zip(parameters, param_grads):
        result[key.split(".")[0]]["params"].append(backend.numpy(grad))
    return result


def _differences(
    reference: dict[str, Any], others: list[dict[str, Any]]
) -> dict[str, tuple[float, float] | None]:
    """The worst (absolute, relative) difference of output, output gradient and parameter
    gradients between one layer's reference probe and the others' (None: not compared)."""
    worst: dict[str, Any] = {"output": (0.0, 0.0), "grad": None, "params": None}
    for other in others:
        worst["output"] = max(worst["output"], difference(reference["output"], other["output"]))
        if reference["grad"] is not None and other["grad"] is not None:
            worst["grad"] = max(
                worst["grad"] or (0.0, 0.0), difference(reference["grad"], other["grad"])
            )
        if reference["params"]:
            # One comparison per layer: a bias feeding training-mode batch norm has a
            # gradient that is zero up to rounding, so its own relative error means nothing.
            mine = np.concatenate([g.reshape(-1) for g in reference["params"]])
            theirs = np.concatenate([g.reshape(-1) for g in other["params"]])
            worst["params"] = max(worst["params"] or (0.0, 0.0), difference(mine, theirs))
    return worst


def compare_layers(
    backends: list[Backend], network: str, spec: ModelSpec, seed: int, float64: Backend
) -> list[LayerDiff]:
    """The first backend is the reference; differences are the worst over the others, and each
    floor is the reference's relative distance from ``float64`` (PyTorch in float64; in bf16 and
    fp16 it computes the same rule in float64), never below the precision's unit roundoff."""
    inputs = example_inputs(spec, PROBE_BATCH, seed)
    rng = np.random.default_rng(seed + 1)
    weights = [
        rng.standard_normal((PROBE_BATCH, *value.shape)).astype(np.float32)
        for value in spec.output_values
    ]
    probes: dict[str, dict[str, Any]] = {
        backend.name: _probe(backend, spec, seed, inputs, weights) for backend in backends
    }
    exact = _probe(float64, spec, seed, inputs, weights)
    reference = probes[backends[0].name]
    precision = backends[0].precision
    rows = []
    for info in spec.infos:
        row: dict[str, Any] = reference[info.name]
        shapes = {
            name: tuple(probe[info.name]["output"].shape[1:]) for name, probe in probes.items()
        }
        worst = _differences(row, [probe[info.name] for probe in list(probes.values())[1:]])
        floors = _differences(row, [exact[info.name]])
        formats = {}
        if precision != FLOAT32 and in_low_precision(info):
            formats = {
                name: in_format(probe[info.name]["output"], precision)
                for name, probe in probes.items()
            }
        output, grad, params = (worst[key] or (None, None) for key in ("output", "grad", "params"))
        rows.append(
            LayerDiff(
                network,
                info.name,
                info.kind,
                info.output.shape,
                shapes,
                UNIT_ROUNDOFFS[precision],
                formats,
                *output,
                *grad,
                *params,
                *(None if floor is None else floor[1] for floor in floors.values()),
            )
        )
    return rows
