"""The machine's matrix-product ceiling: what its fastest kernels reach on one large product.

The ceiling is the fastest of a few 2048 x 2048 matrix products through PyTorch on the same
device and threads, 2 x 2048^3 FLOPs each: about as close to the hardware's peak as code in
that format gets. ``gx bench`` divides a training step's GFLOP/s by it (the share of the
ceiling); each format is measured the same way, in its own dtype (bf16 and fp16 products
accumulate in float32). PyTorch is the yardstick for either backend; without it there is none.
"""

from __future__ import annotations

import functools
import importlib.util
import time

SIZE = 2048
REPEATS = 5
_DTYPES = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@functools.cache
def matrix_product_ceiling(
    device: str, precision: str, threads: int, repeats: int = REPEATS
) -> float | None:
    """GFLOP/s of the fastest of ``repeats`` SIZE x SIZE products in ``precision``'s dtype on
    ``device`` with ``threads`` CPU threads; None where PyTorch is not installed. Measured once
    per process (a bench of several experiments reuses it)."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    dtype = getattr(torch, _DTYPES[precision])
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(SIZE, SIZE, generator=generator).to(device, dtype) for _ in range(2))
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.mm(a, b)  # warm-up: thread pool, caches, the kernel's own set-up
        best = float("inf")
        for _ in range(repeats):
            synchronize()
            began = time.perf_counter()
            torch.mm(a, b)
            synchronize()
            best = min(best, time.perf_counter() - began)
    finally:
        torch.set_num_threads(previous)
    return 2 * SIZE**3 / best / 1e9
