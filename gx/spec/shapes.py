"""Spec-level helpers shared by commands: example inputs of a spec's shapes, and shapes as text."""

from __future__ import annotations

import numpy as np

from gx.spec.graph import ModelSpec


def example_inputs(spec: ModelSpec, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the right shapes and label ranges for ``spec``."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.integers(0, value.classes, count)
        if value.is_label
        else rng.standard_normal((count, *value.shape), dtype=np.float32)
        for name, value in spec.inputs.items()
    }


def shape_text(shape: tuple[int, ...] | None) -> str:
    """A shape as printed in tables and graphs: "128x7x7"; "label" for integer labels."""
    if shape is None:
        return ""
    return "label" if shape == () else "x".join(str(d) for d in shape)
