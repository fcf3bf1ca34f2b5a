"""PyTorch computes every gx network in the NCHW layout, whatever strides a numpy batch has.

numpy gives a length-1 axis any stride. gx's MNIST array is (N, 1, 28, 28) with stride 0 on the
channel axis; a batch picked from it by an index array gets stride 4 bytes there, which PyTorch
reads as channels-last, and its convolutions then answer channels-last. PyTorch's channels-last
CPU batch norm is far less exact than its NCHW kernel: on the first batch of dcgan's
discriminator it moved D's output by 3.5e-5 and its weight gradients by up to 1e-3 (rms,
against float64), where the training path (the whole array on the device, then ``take``) stays
within float32 rounding. The torch backend's ``tensor`` gives such arrays NCHW strides.
"""

from __future__ import annotations

import numpy as np
import pytest

from gx.backends import get_backend
from gx.spec import MaskSource, ModelSpec

pytestmark = pytest.mark.cross_framework

torch = pytest.importorskip("torch")

BATCH = 64


def digit_like_images(count: int) -> np.ndarray:
    """Strokes on a constant background of -1, stored as gx's datasets store images: the
    channel axis added with ``[:, None]`` (stride 0)."""
    rng = np.random.default_rng(0)
    images = np.full((count, 28, 28), -1.0, np.float32)
    images[:, 8:20, 10:18] = rng.uniform(-1.0, 1.0, (count, 12, 8))
    return images[:, None]


def conv_then_batch_norm() -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "inputs": {"image": [1, 28, 28]},
            "layers": [
                {
                    "name": "conv",
                    "kind": "conv2d",
                    "out": 64,
                    "kernel": 4,
                    "stride": 2,
                    "padding": 1,
                    "bias": False,
                },
                {"name": "norm", "kind": "batch_norm"},
            ],
        }
    )


def test_a_batch_picked_by_index_reaches_pytorch_in_nchw_strides() -> None:
    images = digit_like_images(200)
    batch = images[np.arange(BATCH) * 3]
    assert batch.strides[1] == 4  # the case: numpy's stride for the length-1 channel axis
    tensor = get_backend("torch", "cpu").tensor(batch)
    assert tensor.stride() == (784, 784, 28, 1)
    assert np.array_equal(tensor.numpy(), batch)


def test_batch_norm_gives_the_same_numbers_for_a_numpy_batch_as_in_training() -> None:
    backend = get_backend("torch", "cpu")
    images = digit_like_images(200)
    indices = np.arange(BATCH) * 3
    module = backend.compile(conv_then_batch_norm(), 0, MaskSource(0))
    backend.set_training(module, True)
    with backend.no_grad():
        from_numpy = backend.numpy(module({"image": backend.tensor(images[indices])}))
        in_training = backend.numpy(
            module({"image": backend.take(backend.tensor(images), indices)})
        )
    assert np.array_equal(from_numpy, in_training)

    exact = get_backend("torch", "cpu", "float64")
    reference = exact.compile(conv_then_batch_norm(), 0, MaskSource(0))
    exact.set_training(reference, True)
    with exact.no_grad():
        truth = exact.numpy(reference({"image": exact.tensor(images[indices])}))
    # NCHW kernel: float32 rounding of unit-scale outputs (7.9e-7 measured); the channels-last
    # one was ~1e-4 off. A channel's statistics sum 8 x 14 x 14 values, which PyTorch's CPU
    # kernel accumulates in float64 on every instruction set, so the bound does not move with
    # the CPU; 1e-5 tells the two layouts apart with 10x room on each side.
    assert np.max(np.abs(from_numpy - truth)) < 1e-5
