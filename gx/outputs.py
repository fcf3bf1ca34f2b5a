"""Files gx writes on request (--out): all or nothing, and one message when the place is wrong."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gx.errors import GxError


def _cannot_write(path: Path, reason: object, option: str) -> GxError:
    return GxError(
        f"cannot write {option} '{path}' ({reason}); choose a file in a folder you can write to"
    )


@contextmanager
def written_atomically(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """A staging file beside ``path`` to write; it replaces ``path`` only if the block succeeds.

    An existing file at ``path`` is never left half-written, and a place that cannot be written
    (a missing parent that cannot be made, a read-only folder, a folder named like the file) is
    one ``GxError`` before any work is done.
    """
    path = Path(path)
    if path.is_dir():
        raise GxError(f"{option} '{path}' is a folder; give a file name, e.g. {path / 'model.svg'}")
    staging = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.touch()
    except OSError as error:
        raise _cannot_write(path, error.strerror or error, option) from None
    try:
        yield staging
        os.replace(staging, path)
    except OSError as error:
        raise _cannot_write(path, error.strerror or error, option) from None
    finally:
        staging.unlink(missing_ok=True)
