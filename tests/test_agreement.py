"""The single-pass agreement rule (gx.parity.agreement) the cross-framework tests judge with."""

from __future__ import annotations

import numpy as np
import pytest

from gx.parity.agreement import (
    FLOOR_FACTOR,
    UNIT_ROUNDOFF,
    agrees,
    allowed_difference,
    relative_norm,
)

pytestmark = pytest.mark.cross_framework


def test_the_xeon_case_that_a_fixed_tolerance_failed_agrees():
    """cdcgan's discriminator imported and compiled in Jittor on an Intel Xeon with AVX-512:
    1.23e-5 from PyTorch, over a fixed 1e-5; PyTorch float32 was 2.25e-6 from float64 on the
    same output (tests/test_import.py measures both in the same test)."""
    difference, floor = 1.2296e-5, 2.25e-6
    assert difference > 1e-5
    assert agrees(difference, floor)
    assert allowed_difference(floor) == pytest.approx(FLOOR_FACTOR * floor)


def test_a_difference_beyond_the_factor_is_outside():
    floor = 3e-7
    assert agrees(FLOOR_FACTOR * floor, floor)
    assert not agrees(FLOOR_FACTOR * floor * 1.01, floor)


def test_an_exact_floor_still_allows_float32_rounding():
    """A lookup is exact in float32 (floor 0); another implementation may still round once."""
    assert allowed_difference(0.0) == FLOOR_FACTOR * UNIT_ROUNDOFF
    assert agrees(2 * UNIT_ROUNDOFF, 0.0)
    assert not agrees(1e-5, 0.0)


def test_relative_norm():
    expected = np.array([3.0, 4.0])
    assert relative_norm(expected + np.array([0.0, 0.5]), expected) == pytest.approx(0.1)
    assert relative_norm(np.array([0.0, 2.0]), np.zeros(2)) == 2.0  # largest |got| when 0
    assert relative_norm(np.zeros(0), np.zeros(0)) == 0.0
