"""When one pass through a network agrees with PyTorch: as closely as float32 rounding allows.

A float32 computation lands some distance away from the same computation in float64; that
distance, measured on the spot, is the computation's *floor*: how much rounding it carries on
this CPU with these kernels. A second correct float32 implementation (Jittor's kernels, another
runtime, PyTorch on other kernels) sums in its own order and lands a comparable distance away in
another direction, so gx accepts a difference from PyTorch of up to ``FLOOR_FACTOR`` times the
floor. A fixed tolerance cannot do this: a deep network's outputs carry ten times the rounding
of a shallow one's, and the kernels each CPU picks move both.

Measured (docs/cpu-independence.md): over the networks of tests/test_import.py, Jittor's
difference from PyTorch is at most 5.5 times the floor with AVX-512 kernels (an Intel Xeon) and
4.2 times with AVX2 kernels; the largest ratio comes from convolutions whose 2,048-term sums
Jittor rounds more than PyTorch does. A wrong layer, or one weight tensor off by 1e-4, is
outside by far more than the factor (tests/test_agreement.py).
"""

from __future__ import annotations

import numpy as np

from gx.precision import FLOAT32, UNIT_ROUNDOFFS

# No float32 result is promised closer than half an ulp of its magnitude: a floor below that
# (an exact lookup, a sum that happened to round exactly) is taken as that.
UNIT_ROUNDOFF = UNIT_ROUNDOFFS[FLOAT32]
FLOOR_FACTOR = 16.0


def relative_norm(got: np.ndarray, expected: np.ndarray) -> float:
    """||got - expected|| / ||expected|| in float64 (the largest |got| when expected is 0)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    scale = float(np.linalg.norm(expected))
    difference = float(np.linalg.norm(got - expected))
    if scale > 0:
        return difference / scale
    return float(np.max(np.abs(got))) if got.size else 0.0


def allowed_difference(floor: float, unit_roundoff: float = UNIT_ROUNDOFF) -> float:
    """The largest difference that agrees, for a computation whose floor is ``floor``, in a
    format of ``unit_roundoff`` (bf16 and fp16 results: no closer than half their ulp)."""
    return FLOOR_FACTOR * max(floor, unit_roundoff)


def agrees(difference: float, floor: float, unit_roundoff: float = UNIT_ROUNDOFF) -> bool:
    """Whether ``difference`` (from PyTorch float32) is within ``FLOOR_FACTOR`` floors; the
    difference and the floor must be the same measure (e.g. both ``relative_norm``)."""
    return bool(difference <= allowed_difference(floor, unit_roundoff))
