"""The PyTorch backend. Importing this package imports torch; gx does so only when asked."""

from gx.backends.torch.backend import TorchBackend

__all__ = ["TorchBackend", "create"]


def create(device: str, dtype: str = "float32", precision: str = "float32") -> TorchBackend:
    import torch

    from gx.backends import cuda_missing

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise cuda_missing("torch")
    return TorchBackend(device, dtype, precision)
