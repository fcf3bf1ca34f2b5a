"""One denormal mode for the whole process: IEEE, as PyTorch and numpy define it.

Jittor compiles its kernels with -Ofast, and gcc then links crtfastmath.o into each one, whose
constructor switches the loading thread to flush-to-zero / denormals-are-zero. Unchecked, the
first Jittor op flushed every later float32 denormal in the process to zero, in Jittor, PyTorch
and numpy alike, and numpy warned "The value of the smallest subnormal ... is zero" on every
Jittor run. gx cancels -Ofast in Jittor's kernel flags (environment.ieee_kernel_flags).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gx.backends import get_backend
from gx.backends.jittor.environment import IEEE_OPTIMISATION, ieee_kernel_flags
from gx.machine import denormals_flushed

TINY = np.float32(np.finfo(np.float32).tiny)  # smallest normal float32, 1.2e-38
DENORMAL = np.float32(1e-40)  # a float32 denormal: read as 0 under denormals-are-zero


@pytest.mark.jittor
def test_jittor_ops_keep_denormals_in_jittor_pytorch_and_numpy() -> None:
    jittor = get_backend("jittor", "cpu")
    # A product whose result is denormal, through a Jittor kernel: the kernel's load is what
    # used to switch the mode, and its own arithmetic then flushed the result to 0.
    product = jittor.numpy(jittor.tensor(np.full(8, TINY)) * jittor.tensor(np.full(8, 1e-2)))
    assert np.all(product > 0)  # first: under denormals-are-zero, allclose would read 0 as equal
    # one IEEE multiplication, correctly rounded on every CPU; rtol only absorbs the reference's
    # own rounding of the float64 product to float32
    np.testing.assert_allclose(product, np.float32(TINY * np.float32(1e-2)), rtol=1e-6)
    assert not denormals_flushed()
    torch = get_backend("torch", "cpu")
    assert torch.numpy(torch.tensor(np.full(4, TINY)) / torch.tensor(np.full(4, 1e2)))[0] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when the smallest subnormal reads as 0
        assert np.finfo(np.float32).smallest_subnormal > 0
        assert np.finfo(np.float64).smallest_subnormal > 0


def test_denormal_probe_sees_flush_to_zero() -> None:
    import torch

    assert not denormals_flushed()
    assert torch.set_flush_denormal(True)  # FTZ and DAZ in this thread, as crtfastmath sets
    try:
        assert denormals_flushed()
        assert np.array([DENORMAL], np.float32)[0] * np.float32(1) == 0
    finally:
        torch.set_flush_denormal(False)
    assert not denormals_flushed()


JITTOR_KERNEL_FLAGS = " -Wall -std=c++14 -fPIC  -march=native  -fopenmp  -Ofast "


def test_ieee_kernel_flags_cancel_ofast_once() -> None:
    flags = ieee_kernel_flags(JITTOR_KERNEL_FLAGS)
    assert flags.split()[-2:] == ["-Ofast", IEEE_OPTIMISATION]  # gcc: the last -O wins
    assert ieee_kernel_flags(flags) == flags  # a second backend in the process adds nothing
    user_chosen = " -fPIC -O2 "  # Jittor adds no -Ofast when cc_flags names an -O level
    assert ieee_kernel_flags(user_chosen) == user_chosen
    assert ieee_kernel_flags(" -Ofast -O1 ") == " -Ofast -O1 "
