"""gx's layers and metrics against references written here, not against gx or the other backend.

Layers are compared with float64 numpy written from the definitions (a linear map, a sliding
window, its transpose as a scatter, a table lookup); the Fréchet distance with a 2x2 case whose
covariances do not commute, worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gx.backends import get_backend
from gx.backends.base import Backend
from gx.evaluate import metrics
from gx.spec import ModelSpec

pytestmark = pytest.mark.cross_framework

BACKENDS = ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]
UNIT_ROUNDOFF = 2.0**-24  # float32


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param, "cpu")


def run_layer(
    backend: Backend, input_shape: list[int] | dict, layer: dict, x: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The layer's output for ``x``, and the (seeded) weights it used, as float64 numpy."""
    name = "label" if isinstance(input_shape, dict) else "x"
    spec = ModelSpec.from_dict(
        {"inputs": {name: input_shape}, "layers": [{"name": "layer", **layer}]}
    )
    module = backend.compile(spec, 5)
    output = backend.numpy(module({name: backend.tensor(x)}))
    weights = {
        key.split(".", 1)[1]: value.astype(np.float64)
        for key, value in backend.get_weights(module, spec).items()
    }
    return output.astype(np.float64), weights


def assert_matches(
    actual: np.ndarray, expected: np.ndarray, magnitudes: np.ndarray | None = None, terms: int = 0
) -> None:
    """``actual`` (float32) is ``expected`` (float64, from float32 inputs: nearly exact) up to
    float32 rounding: each value within gamma(terms) * ``magnitudes`` + one rounding of itself.

    ``magnitudes`` is the same reference computed from the absolute values of every operand, the
    sum of the terms' magnitudes. A float32 sum of k products, in any order, with or without
    fused multiply-adds, is off by at most gamma(k) = k u / (1 - k u) times that (Higham,
    Accuracy and Stability of Numerical Algorithms, 3.1): a bound for every CPU and kernel that
    sums, where a fixed tolerance would be a guess about one CPU's rounding.
    """
    assert actual.shape == expected.shape
    gamma = terms * UNIT_ROUNDOFF / (1 - terms * UNIT_ROUNDOFF)
    bound = UNIT_ROUNDOFF * np.abs(expected)
    if magnitudes is not None:
        bound = bound + gamma * magnitudes
    assert np.all(np.abs(actual - expected) <= bound), np.max(np.abs(actual - expected) - bound)


def images(*shape: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


# -- numpy references ---------------------------------------------------------------------------


def numpy_conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    stride: int,
    pad_before: int,
    pad_after: int,
) -> np.ndarray:
    """Cross-correlation of (N, C, H, W) with (O, C, k, k), zero padding per side."""
    kernel = weight.shape[-1]
    padded = np.pad(
        x.astype(np.float64), [(0, 0), (0, 0), (pad_before, pad_after), (pad_before, pad_after)]
    )
    rows = (padded.shape[2] - kernel) // stride + 1
    columns = (padded.shape[3] - kernel) // stride + 1
    out = np.empty((x.shape[0], weight.shape[0], rows, columns))
    for i in range(rows):
        for j in range(columns):
            window = padded[
                :, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel
            ]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", window, weight)
    return out + bias.reshape(1, -1, 1, 1)


def numpy_conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    stride: int,
    crop_before: int,
    crop_after: int,
) -> np.ndarray:
    """Each input pixel scatters weight (C, O, k, k) times its value into a full output of
    (n - 1) * stride + k pixels a side; then ``crop_before`` / ``crop_after`` pixels are cut."""
    kernel = weight.shape[-1]
    size = [(n - 1) * stride + kernel for n in x.shape[2:]]
    full = np.zeros((x.shape[0], weight.shape[1], *size))
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            full[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel] += (
                np.einsum("nc,cokl->nokl", x[:, :, i, j].astype(np.float64), weight)
            )
    cropped = full[:, :, crop_before : size[0] - crop_after, crop_before : size[1] - crop_after]
    return cropped + bias.reshape(1, -1, 1, 1)


# -- layers -------------------------------------------------------------------------------------


def test_linear(backend: Backend) -> None:
    x = images(4, 6)
    output, weights = run_layer(backend, [6], {"kind": "linear", "out": 3}, x)
    weight, bias = weights["weight"], weights["bias"]
    assert_matches(
        output,
        x.astype(np.float64) @ weight.T + bias,
        np.abs(x.astype(np.float64)) @ np.abs(weight).T + np.abs(bias),
        terms=6 + 1,
    )


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (4, 2, 1), (5, 1, "same"), (3, 1, 0)])
def test_conv2d(backend: Backend, kernel: int, stride: int, padding: int | str) -> None:
    x = images(2, 3, 7, 7)
    output, weights = run_layer(
        backend,
        [3, 7, 7],
        {"kind": "conv2d", "out": 4, "kernel": kernel, "stride": stride, "padding": padding},
        x,
    )
    pad = (kernel - 1) // 2 if padding == "same" else padding
    weight, bias = weights["weight"], weights["bias"]
    assert_matches(
        output,
        numpy_conv2d(x, weight, bias, stride, pad, pad),
        numpy_conv2d(np.abs(x), np.abs(weight), np.abs(bias), stride, pad, pad),
        terms=3 * kernel * kernel + 1,
    )


@pytest.mark.parametrize(
    "kernel,stride,padding,output_padding", [(4, 2, 1, 0), (4, 1, 0, 0), (3, 2, 1, 1), (4, 2, 3, 0)]
)
def test_conv_transpose2d(
    backend: Backend, kernel: int, stride: int, padding: int, output_padding: int
) -> None:
    x = images(2, 3, 4, 4)
    output, weights = run_layer(
        backend,
        [3, 4, 4],
        {
            "kind": "conv_transpose2d",
            "out": 2,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
        },
        x,
    )
    # padding p cuts p pixels off both sides; output_padding gives back that many after
    weight, bias, crop = weights["weight"], weights["bias"], (padding, padding - output_padding)
    assert_matches(
        output,
        numpy_conv_transpose2d(x, weight, bias, stride, *crop),
        numpy_conv_transpose2d(np.abs(x), np.abs(weight), np.abs(bias), stride, *crop),
        terms=3 * kernel * kernel + 1,  # an output pixel gathers at most every tap of every input
    )


def test_embedding(backend: Backend) -> None:
    labels = np.array([4, 0, 2, 4], np.int64)
    output, weights = run_layer(backend, {"classes": 5}, {"kind": "embedding", "dim": 3}, labels)
    assert_matches(output, weights["weight"][labels])


# -- 'same' padding of conv_transpose2d -----------------------------------------------------------


def tensorflow_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's forward SAME padding (before, after): the odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def test_conv_transpose_same_is_pytorchs_crop_two_before_one_after(backend: Backend) -> None:
    """k5 s2 'same' (the dense DCGAN's 7 -> 14): the full scatter is 17 pixels; gx cuts 2 before
    and 1 after (padding 2, output_padding 1: all PyTorch's and Jittor's layers can express).

    TensorFlow's transposed SAME is the adjoint of its forward SAME convolution, which pads a
    14-pixel input 1 before and 2 after: it cuts 1 before and 2 after. The two agree in size and
    differ by a one-pixel shift whenever kernel - stride is odd; gx documents PyTorch's choice
    (Keras 3 on its PyTorch backend makes the same one).
    """
    x = images(2, 3, 7, 7)
    output, weights = run_layer(
        backend,
        [3, 7, 7],
        {"kind": "conv_transpose2d", "out": 2, "kernel": 5, "stride": 2, "padding": "same"},
        x,
    )
    weight, bias = weights["weight"], weights["bias"]
    magnitudes = numpy_conv_transpose2d(np.abs(x), np.abs(weight), np.abs(bias), 2, 2, 1)
    assert_matches(output, numpy_conv_transpose2d(x, weight, bias, 2, 2, 1), magnitudes, 76)

    before, after = tensorflow_same_padding(14, 5, 2)
    assert (before, after) == (1, 2)
    tensorflow = numpy_conv_transpose2d(x, weight, bias, 2, before, after)
    # The adjoint: <conv(y), x> = <y, conv_transpose(x)> for TensorFlow's padding, bias aside.
    y = images(2, 2, 14, 14).astype(np.float64)
    # conv_transpose2d's weight (in, out, k, k) read as a convolution's (out, in, k, k) maps back
    forward = numpy_conv2d(y, weight, np.zeros(3), 2, before, after)
    adjoint = numpy_conv_transpose2d(x, weight, np.zeros(2), 2, before, after)
    # float64 numpy on both sides: rounding ~1e-16 per operation, far below 1e-10 on any CPU
    assert np.sum(forward * x) == pytest.approx(np.sum(y * adjoint), rel=1e-10)
    assert np.abs(output - tensorflow).max() > 0.1
    # gx is one pixel ahead
    assert_matches(output[:, :, :-1, :-1], tensorflow[:, :, 1:, 1:], magnitudes[:, :, :-1, :-1], 76)


# -- Fréchet distance ---------------------------------------------------------------------------


def test_frechet_distance_of_non_commuting_covariances_worked_by_hand() -> None:
    """A = diag(4, 1); B = diag(9, 1) rotated by 45 degrees = [[5, 4], [4, 5]]; AB != BA.

    For 2x2 positive definite matrices, the eigenvalues l1, l2 of A^1/2 B A^1/2 give
    (sqrt l1 + sqrt l2)^2 = tr(AB) + 2 sqrt(det A det B) = 25 + 2 * 6 = 37, so
    Tr((AB)^1/2) = sqrt 37 and FD = |mu_a - mu_b|^2 + 5 + 10 - 2 sqrt 37 = 5 + 15 - 2 sqrt 37
    with means (0, 0) and (1, 2). The shortcut Tr(A^1/2 B^1/2) = tr(diag(2, 1) [[2, 1], [1, 2]])
    = 6, right only for commuting matrices, would give 20 - 12 = 8.
    """
    cov_a = np.diag([4.0, 1.0])
    cov_b = np.array([[5.0, 4.0], [4.0, 5.0]])
    assert not np.allclose(cov_a @ cov_b, cov_b @ cov_a)
    mean_a, mean_b = np.zeros(2), np.array([1.0, 2.0])
    expected = 20 - 2 * math.sqrt(37)  # 7.8345...
    # float64 arithmetic on 2x2 matrices: rounding ~1e-16 per operation on any CPU
    assert metrics.frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(
        expected, rel=1e-12
    )
    assert metrics.frechet_distance(mean_b, cov_b, mean_a, cov_a) == pytest.approx(
        expected, rel=1e-12
    )
