"""Read CIFAR-10's binary distribution (cifar-10-binary.tar.gz) straight from the archive.

Each part is a file of fixed-size records: one label byte, then the 32x32 image as 1,024 red,
1,024 green and 1,024 blue bytes, rows in order. Raw bytes only: nothing is unpickled, and
nothing is extracted to disk.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from gx.errors import GxError

SIZE = 32
RECORD_BYTES = 1 + 3 * SIZE * SIZE
MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{index}.bin" for index in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}


def read_part(archive: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a part: uint8 (N, 32, 32, 3) and int64 (N,)."""
    fix = "Fix: delete it so gx downloads it again, or put the published archive there"
    try:
        with tarfile.open(archive, "r:*") as tar:  # gzipped or not
            records = [_member_bytes(tar, archive, name, fix) for name in MEMBERS[part]]
    except (tarfile.TarError, OSError, EOFError) as error:
        reason = " ".join(str(error).split())  # tarfile lists each method it tried on a line
        raise GxError(f"{archive} is not a readable CIFAR-10 archive ({reason}). {fix}") from None
    data = np.frombuffer(b"".join(records), dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = data[:, 0].astype(np.int64)
    if labels.size and labels.max() > 9:
        raise GxError(f"{archive} has labels above 9, so it is not CIFAR-10. {fix}")
    images = data[:, 1:].reshape(-1, 3, SIZE, SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _member_bytes(tar: tarfile.TarFile, archive: Path, name: str, fix: str) -> bytes:
    try:
        stream = tar.extractfile(name)
    except KeyError:
        stream = None
    if stream is None:
        raise GxError(f"{archive} has no file {name}. {fix}")
    data = stream.read()
    if len(data) % RECORD_BYTES:
        raise GxError(
            f"{archive}: {name} is {len(data)} bytes, not a whole number of "
            f"{RECORD_BYTES}-byte records. {fix}"
        )
    return data
