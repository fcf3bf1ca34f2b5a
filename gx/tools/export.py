"""``gx export``: a trained generator as an ONNX file, for onnxruntime or TensorRT (docs/export.md).

A checkpoint is backend-neutral, so whichever backend trained it, the generator is compiled in
PyTorch and traced from there (gx/backends/torch/export.py). The file has the spec's inputs by
name (``z`` float32 of the noise shape, ``label`` int64 for conditional models), one output
``image`` in [-1, 1], and a dynamic batch dimension on all of them. After writing, onnxruntime
runs it on seeded inputs of another batch size and is compared with gx's own generator, and the
difference is judged against the float32 rounding floor of those images (gx.parity.agreement).
"""

from __future__ import annotations

import importlib
import importlib.util
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gx.errors import GxError
from gx.outputs import written_atomically
from gx.parity.agreement import agrees
from gx.run_folder.sampler import generate, load_generator
from gx.spec import example_inputs

# ONNX opset 17: read by onnxruntime and by TensorRT 8.5 and later (JetPack 5.1 and 6).
OPSET = 17
OUTPUT_NAME = "image"
INSTALL_HINT = "pip install 'gx[onnx]'   (or: pip install onnx onnxruntime)"
# Traced with batch 2, checked with batch 5: the check also proves the batch is dynamic.
TRACE_BATCH, CHECK_BATCH = 2, 5


@dataclass
class ExportResult:
    """The written ONNX file and how closely onnxruntime reproduces gx's generator."""

    path: Path
    """The ONNX file."""
    opset: int
    """The ONNX opset it was written with."""
    inputs: dict[str, tuple[str, tuple[int | str, ...]]]
    """Each input's name -> (ONNX type, shape); the batch axis is named, not fixed."""
    check_batch: int
    """The batch size of the check, other than the traced one."""
    max_abs_difference: float
    """The largest difference between onnxruntime's images and gx's own generator's, on the
    same seeded inputs."""
    floor: float
    """The largest difference between gx's float32 images and the same generator in float64:
    the rounding that ``max_abs_difference`` is judged against."""

    @property
    def agrees(self) -> bool:
        """Whether onnxruntime stays within gx's agreement rule of the float32 rounding floor."""
        return agrees(self.max_abs_difference, self.floor)


def require_onnx() -> None:
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise GxError(
            f"gx export needs {' and '.join(missing)}, which is not installed; install "
            f"it with: {INSTALL_HINT}"
        )


def onnx_session(path: str | Path) -> typing.Any:
    """An onnxruntime CPU session for an exported file."""
    onnxruntime = importlib.import_module("onnxruntime")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def export_generator(checkpoint: str | Path, out: str | Path = "generator.onnx") -> ExportResult:
    """Write the checkpoint's generator to ``out`` as ONNX and check it with onnxruntime."""
    require_onnx()
    if Path(out).suffix != ".onnx":
        raise GxError(f"--out must end in .onnx, got '{out}'")
    backend, generator, model = load_generator(checkpoint, "torch", "cpu")
    from gx.backends.torch.export import export_onnx  # imports torch, known to be there now

    spec = model.generator
    with written_atomically(out) as staging:
        export_onnx(
            backend,  # type: ignore[arg-type]  # load_generator(..., "torch") gives TorchBackend
            generator,
            example_inputs(spec, TRACE_BATCH),
            OUTPUT_NAME,
            staging,
            OPSET,
        )
    session = onnx_session(out)
    check = example_inputs(spec, CHECK_BATCH, seed=1)
    (onnx_images,) = session.run([OUTPUT_NAME], check)
    codes = {name: check[name] for name in model.codes}
    gx_images = generate(backend, generator, check["z"], check.get("label"), codes=codes)
    exact_backend, exact_generator, _ = load_generator(checkpoint, "torch", "cpu", "float64")
    exact = generate(exact_backend, exact_generator, check["z"], check.get("label"), codes=codes)
    inputs = {item.name: (item.type, tuple(item.shape)) for item in session.get_inputs()}
    return ExportResult(
        Path(out),
        OPSET,
        inputs,
        CHECK_BATCH,
        _max_difference(onnx_images, gx_images),
        _max_difference(gx_images, exact),
    )


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)))
