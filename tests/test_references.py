"""gx's layers and metrics against references written here, not against gx or the other backend.

Layers are compared with float64 numpy written from the definitions (a linear map, a sliding
window, its transpose as a scatter, a table lookup, piecewise-linear interpolation, window and
image sums, the softmax); the Fréchet distance with a 2x2 case whose covariances do not commute,
worked out by hand.
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


# -- resampling, pooling, products and softmax ----------------------------------------------------


@pytest.mark.slow
def test_upsample_nearest(backend: Backend) -> None:
    x = images(2, 3, 4, 5)
    output, _ = run_layer(backend, [3, 4, 5], {"kind": "upsample", "scale": 3}, x)
    rows, columns = np.arange(12) // 3, np.arange(15) // 3
    assert_matches(output, x[:, :, rows][:, :, :, columns].astype(np.float64))


@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_bilinear(backend: Backend, scale: int) -> None:
    """numpy's piecewise-linear interpolation at the pixel-centre positions
    (o + 0.5) / scale - 0.5 is the reference, along the width, then the height.

    Each output value weighs 2 x 2 input pixels: 4 products and their sums. The weights carry
    rounding of their own, absolute rather than relative to themselves: PyTorch computes them
    in float32 from the position (o + 0.5) * (1/scale) - 0.5, which three roundings move by up
    to 3 u times the largest position (< 5 here), so each axis may shift (3 * 5 + 1) u of weight
    between its two pixels. The bound is the sum of those terms times the magnitudes of the
    2 x 2 pixels each output reads.
    """
    x = images(2, 3, 4, 5)
    output, _ = run_layer(
        backend, [3, 4, 5], {"kind": "upsample", "scale": scale, "mode": "bilinear"}, x
    )

    def positions(size: int) -> np.ndarray:
        return (np.arange(size * scale) + 0.5) / scale - 0.5

    def interpolated(values: np.ndarray, axis: int) -> np.ndarray:
        size = values.shape[axis]
        return np.apply_along_axis(
            lambda line: np.interp(positions(size), np.arange(size), line), axis, values
        )

    def both_pixels(values: np.ndarray, axis: int) -> np.ndarray:
        """|x0| + |x1| of the two pixels each output position reads along ``axis``."""
        size = values.shape[axis]
        first = np.floor(np.clip(positions(size), 0, size - 1)).astype(int)
        second = np.minimum(first + 1, size - 1)
        return np.take(values, first, axis) + np.take(values, second, axis)

    expected = interpolated(interpolated(x.astype(np.float64), 3), 2)
    magnitudes = both_pixels(both_pixels(np.abs(x.astype(np.float64)), 3), 2)
    assert_matches(output, expected, magnitudes, terms=4 + 2 + 2 * (3 * 5 + 1))


def test_pixel_shuffle(backend: Backend) -> None:
    x = images(2, 12, 2, 3)
    output, _ = run_layer(backend, [12, 2, 3], {"kind": "pixel_shuffle", "factor": 2}, x)
    expected = np.empty((2, 3, 4, 6))
    for c in range(3):
        for i in range(2):
            for j in range(2):
                expected[:, c, i::2, j::2] = x[:, c * 4 + i * 2 + j]
    np.testing.assert_array_equal(output, expected)


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (5, 5, 0)])
@pytest.mark.slow
def test_avg_pool2d(backend: Backend, kernel: int, stride: int, padding: int) -> None:
    x = images(2, 3, 5, 6)
    output, _ = run_layer(
        backend,
        [3, 5, 6],
        {"kind": "avg_pool2d", "kernel": kernel, "stride": stride, "padding": padding},
        x,
    )
    # a convolution with every weight 1 / kernel^2 on each channel alone sums the same window
    weight = np.eye(3)[:, :, None, None] * np.ones((1, 1, kernel, kernel))
    zeros = np.zeros(3)
    expected = numpy_conv2d(x, weight, zeros, stride, padding, padding) / kernel**2
    magnitudes = numpy_conv2d(np.abs(x), weight, zeros, stride, padding, padding) / kernel**2
    assert_matches(output, expected, magnitudes, terms=kernel * kernel + 1)


@pytest.mark.parametrize("kind", ["global_sum", "global_mean"])
def test_global_pooling(backend: Backend, kind: str) -> None:
    x = images(2, 3, 6, 7)
    output, _ = run_layer(backend, [3, 6, 7], {"kind": kind}, x)
    count = 1 if kind == "global_sum" else 6 * 7
    expected = x.astype(np.float64).sum(axis=(2, 3)) / count
    magnitudes = np.abs(x.astype(np.float64)).sum(axis=(2, 3)) / count
    assert_matches(output, expected, magnitudes, terms=6 * 7 + 1)


def test_multiply_broadcasts_a_per_channel_gain(backend: Backend) -> None:
    gain, maps = images(2, 3, 1, 1), images(2, 3, 4, 4) + 1
    spec = ModelSpec.from_dict(
        {
            "inputs": {"gain": [3, 1, 1], "maps": [3, 4, 4]},
            "layers": [{"name": "product", "kind": "multiply", "input": ["gain", "maps"]}],
        }
    )
    module = backend.compile(spec, 5)
    output = backend.numpy(module({"gain": backend.tensor(gain), "maps": backend.tensor(maps)}))
    assert_matches(output.astype(np.float64), gain.astype(np.float64) * maps)


def test_softmax(backend: Backend) -> None:
    """y = exp(x - max) / sum exp(x - max) against float64. Each exponential carries the
    rounding of x - max, relative |x - max| u, and its own (2 u for the libm and vector exps
    both frameworks use); the sum of C positive terms adds gamma(C), the division u: for
    |x - max| <= 4 and C = 5, within gamma(5 + 2 * (4 + 2)) of each value."""
    x = np.random.default_rng(1).uniform(-2.0, 2.0, (4, 5, 3, 3)).astype(np.float32)
    output, _ = run_layer(backend, [5, 3, 3], {"kind": "softmax"}, x)
    shifted = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    expected = shifted / shifted.sum(axis=1, keepdims=True)
    assert_matches(output, expected, expected, terms=5 + 2 * (4 + 2))


# -- normalization ------------------------------------------------------------------------------


def gamma(terms: int) -> float:
    return terms * UNIT_ROUNDOFF / (1 - terms * UNIT_ROUNDOFF)


def run_with_weights(
    backend: Backend,
    inputs: dict[str, list[int] | dict],
    layer: dict,
    arrays: dict[str, np.ndarray],
    weights: dict[str, np.ndarray],
) -> np.ndarray:
    """The layer's training-mode output (float64) for ``arrays``, its parameters set to
    ``weights`` (the rest as initialised)."""
    spec = ModelSpec.from_dict({"inputs": inputs, "layers": [{"name": "layer", **layer}]})
    module = backend.compile(spec, 5)
    tensors = backend.state_tensors(module, spec)
    for key, value in weights.items():
        backend.assign(tensors[f"layer.{key}"], value.astype(np.float32))
    values = {name: backend.tensor(array) for name, array in arrays.items()}
    return backend.numpy(module(values)).astype(np.float64)


def numpy_normalized(x: np.ndarray, runs: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(x normalised per run, the first-order float32 error bound of each value, in units of
    gamma(values per run + 4)).

    ``runs`` labels each value of x with the run it is normalised in. To first order, a float32
    mean of n values is off by gamma(n) * mean|x|, which reaches y = (x - mean) / sd divided by
    sd, once directly and once through the variance (relative error gamma(n + 2), half of it in
    y): |dy| <= gamma(n + 4) * (mean|x| / sd * (1 + |y|) + |y|).
    """
    x = x.astype(np.float64)
    y, bound = np.empty_like(x), np.empty_like(x)
    for run in np.unique(runs):
        values = x[runs == run]
        centered = values - values.mean()
        sd = np.sqrt((centered**2).mean() + eps)
        y[runs == run] = centered / sd
        bound[runs == run] = np.abs(values).mean() / sd * (1 + np.abs(centered / sd))
    return y, bound + np.abs(y)


def per_sample_runs(shape: tuple[int, ...], runs_per_sample: int) -> np.ndarray:
    """Each value's run: sample-major, ``runs_per_sample`` equal runs per sample."""
    per_run = math.prod(shape[1:]) // runs_per_sample
    return (np.arange(math.prod(shape)) // per_run).reshape(shape)


def channel_runs(shape: tuple[int, ...]) -> np.ndarray:
    """Batch norm's runs: one per channel, over the batch and every position."""
    return np.broadcast_to(np.arange(shape[1]).reshape((1, -1) + (1,) * (len(shape) - 2)), shape)


def affine(y: np.ndarray, weight: np.ndarray, bias: np.ndarray, shape: tuple) -> np.ndarray:
    return y * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize(
    "kind, arguments, runs_per_sample",
    [
        ("instance_norm", {"affine": True}, 6),
        ("group_norm", {"groups": 3}, 3),
        ("group_norm", {"groups": 1}, 1),
        ("layer_norm", {}, 1),
    ],
)
def test_sample_norms(backend: Backend, kind: str, arguments: dict, runs_per_sample: int) -> None:
    x = images(2, 6, 5, 5) * 3 + 2
    rng = np.random.default_rng(2)
    shape = (6, 5, 5) if kind == "layer_norm" else (6,)
    weight, bias = rng.uniform(0.5, 2, shape), rng.standard_normal(shape)
    per_channel = (1, 6, 5, 5) if kind == "layer_norm" else (1, 6, 1, 1)
    output = run_with_weights(
        backend, {"x": [6, 5, 5]}, {"kind": kind, **arguments}, {"x": x},
        {"weight": weight, "bias": bias},
    )  # fmt: skip
    y, bound = numpy_normalized(x, per_sample_runs(x.shape, runs_per_sample), 1e-5)
    n = x[0].size // runs_per_sample
    magnitudes = bound * np.abs(weight.reshape(per_channel)) + np.abs(bias.reshape(per_channel))
    assert_matches(output, affine(y, weight, bias, per_channel), magnitudes, n + 6)


@pytest.mark.parametrize("shape", [(8, 6), (4, 3, 5, 5)], ids=["1d", "2d"])
def test_conditional_batch_norm(backend: Backend, shape: tuple[int, ...]) -> None:
    classes, channels = 5, shape[1]
    x = images(*shape) * 2 - 1
    labels = np.array([4, 0, 2, 4, 1, 1, 0, 3][: shape[0]], np.int64)
    rng = np.random.default_rng(3)
    gains = rng.uniform(0.5, 2, (classes, channels))
    biases = rng.standard_normal((classes, channels))
    output = run_with_weights(
        backend,
        {"x": list(shape[1:]), "label": {"classes": classes}},
        {"kind": "conditional_batch_norm", "input": ["x", "label"]},
        {"x": x, "label": labels},
        {"weight": gains, "bias": biases},
    )
    y, bound = numpy_normalized(x, channel_runs(shape), 1e-5)
    per_sample = (shape[0], channels) + (1,) * (len(shape) - 2)
    gain, bias = gains[labels].reshape(per_sample), biases[labels].reshape(per_sample)
    n = x.size // channels
    assert_matches(output, y * gain + bias, bound * np.abs(gain) + np.abs(bias), n + 6)


# -- self-attention -----------------------------------------------------------------------------


def numpy_self_attention(
    x: np.ndarray, weights: dict[str, np.ndarray], softmax_axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """(SAGAN's block in float64, the first-order float32 error bound of each value).

    f, g and h are 1x1 convolutions: sums of C products and a bias, each off by gamma(C + 1)
    times its magnitude (the same sum over absolute values). A score f(x_i) . g(x_j) is then off
    by gamma(C' + C + 1) times S_ji, the product of the magnitudes; a softmax weight beta_ji by
    beta_ji * (2 max_i dS_ji + gamma(P + 3)) over P positions; and o_j = sum_i beta_ji h(x_i) by
    (gamma(P + C + 4) + 2 max_i dS_ji) * sum_i beta_ji |h|(x_i). y = x + gamma * o adds two
    roundings.
    """
    n, channels = x.shape[:2]
    flat = x.astype(np.float64).reshape(n, channels, -1)

    def conv(name: str, values: np.ndarray) -> np.ndarray:
        weight = weights[f"{name}_weight"].reshape(weights[f"{name}_weight"].shape[:2])
        return np.einsum("oc,ncp->nop", weight, values) + weights[f"{name}_bias"].reshape(1, -1, 1)

    def conv_magnitude(name: str) -> np.ndarray:
        absolute = {key: np.abs(value) for key, value in weights.items()}
        weight = absolute[f"{name}_weight"].reshape(absolute[f"{name}_weight"].shape[:2])
        return np.einsum("oc,ncp->nop", weight, np.abs(flat)) + absolute[f"{name}_bias"].reshape(
            1, -1, 1
        )

    f, g, h = conv("f", flat), conv("g", flat), conv("h", flat)
    scores = np.einsum("ncj,nci->nji", g, f)
    scores -= scores.max(axis=softmax_axis, keepdims=True)
    beta = np.exp(scores) / np.exp(scores).sum(axis=softmax_axis, keepdims=True)
    attended = np.einsum("nci,nji->ncj", h, beta)
    residual = float(weights["gamma"][0])
    y = flat + residual * attended

    positions, reduced = flat.shape[2], f.shape[1]
    score_error = gamma(reduced + channels + 1) * np.einsum(
        "ncj,nci->nji", conv_magnitude("g"), conv_magnitude("f")
    ).max(axis=2)  # (n, j)
    weighted = np.einsum("nci,nji->ncj", conv_magnitude("h"), beta)
    attended_error = (gamma(positions + channels + 4) + 2 * score_error[:, None, :]) * weighted
    bound = abs(residual) * attended_error + 2 * UNIT_ROUNDOFF * (
        np.abs(y) + np.abs(residual * attended)
    )
    return y.reshape(x.shape), bound.reshape(x.shape)


def test_self_attention(backend: Backend) -> None:
    """SAGAN's formula, and which way the softmax runs: over the attended positions i for each
    output position j (the other way round is far off)."""
    x = images(2, 16, 3, 4)
    rng = np.random.default_rng(4)
    weights = {
        **{f"{name}_weight": rng.standard_normal((out, 16, 1, 1)) * 0.5
           for name, out in (("f", 2), ("g", 2), ("h", 16))},
        **{f"{name}_bias": rng.standard_normal(out) * 0.5
           for name, out in (("f", 2), ("g", 2), ("h", 16))},
        "gamma": np.array([0.7]),
    }  # fmt: skip
    output = run_with_weights(backend, {"x": [16, 3, 4]}, {"kind": "self_attention"}, {"x": x},
                              weights)  # fmt: skip
    weights = {key: value.astype(np.float32).astype(np.float64) for key, value in weights.items()}
    expected, bound = numpy_self_attention(x, weights)
    assert np.all(np.abs(output - expected) <= bound), np.max(np.abs(output - expected) - bound)
    transposed, _ = numpy_self_attention(x, weights, softmax_axis=1)
    assert np.min(np.max(np.abs(transposed - expected), axis=(1, 2, 3))) > 100 * np.max(bound)


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
