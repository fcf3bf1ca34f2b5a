"""Read the idx format MNIST and Fashion-MNIST are published in.

An idx file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order. Files may be gzip-compressed or not.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from gx.errors import GxError

_GZIP_MAGIC = b"\x1f\x8b"

# Type codes from the idx specification; multi-byte values are big-endian.
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class _CorruptIdx(Exception):
    """Internal: the bytes are not a complete idx file; read_idx turns it into a GxError."""


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an idx file (gzip-compressed or raw), in native byte order."""
    path = Path(path)
    if not path.is_file():
        raise GxError(
            f"idx file {path} does not exist. Fix: check the data folder, or download "
            "the dataset again"
        )
    try:
        return _parse_idx(_read_bytes(path))
    except (_CorruptIdx, OSError, EOFError, zlib.error) as problem:
        raise GxError(
            f"{path} is truncated or corrupt ({problem}). Fix: delete it and download it again"
        ) from None


def is_gzipped(path: Path) -> bool:
    """Whether the file's bytes are gzip-compressed, whatever its name says."""
    with path.open("rb") as file:
        return file.read(2) == _GZIP_MAGIC


def _read_bytes(path: Path) -> bytes:
    # Decide by content rather than by the '.gz' suffix: users rename files both ways.
    if is_gzipped(path):
        with gzip.open(path, "rb") as file:
            return file.read()
    return path.read_bytes()


def _parse_idx(data: bytes) -> np.ndarray:
    if len(data) < 4:
        raise _CorruptIdx(f"only {len(data)} bytes, shorter than the idx header")
    zeros, type_code, ndim = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_TYPES or ndim == 0:
        raise _CorruptIdx(f"bad magic number 0x{data[:4].hex()}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise _CorruptIdx(
            f"header cut short: {len(data)} bytes, {ndim} dimensions need {header_size}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise _CorruptIdx(f"{len(data)} bytes, but shape {shape} needs {expected}")
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    # astype copies, which also makes the result writable (frombuffer over bytes is read-only).
    return values.astype(dtype.newbyteorder("="))
