"""Files gx writes: all or nothing, and one message when the place is wrong or fills up.

Every output is written under a temporary name in its own folder and renamed over the real name
only once it is complete, so a full disk, a crash or Ctrl-C never leaves a half-written file
where the command writes (a rename within one folder is atomic). A place that cannot be written
(a read-only folder, a parent that is a file, missing permission) is one ``GxError`` before any
work is done.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from gx.errors import GxError

# What a failed write raises: the OS's error, or safetensors' own error wrapping it.
WRITE_ERRORS = (OSError, SafetensorError)

# The first bytes of the kinds of file gx writes under a name a user chooses: an existing file
# under that name is replaced only when it is of the same kind (or empty).
SIGNATURES = {".png": (b"\x89PNG\r\n\x1a\n", "a PNG image"), ".npy": (b"\x93NUMPY", "a .npy array")}


def reason(error: BaseException) -> str:
    """What went wrong, without the file name the message already gives."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    # safetensors: "Error while serializing: I/O error: No space left on device (os error 28)"
    code = re.search(r"os error (\d+)", str(error))
    return os.strerror(int(code[1])) if code else str(error)


def cannot_write(path: str | Path, error: BaseException | str, option: str = "--out") -> GxError:
    """'cannot write --out 'x.png' (No space left on device); ...' with the fix that fits: an
    option names a place the user chose, anything else one gx chose (a run's eval.json)."""
    why = error if isinstance(error, str) else reason(error)
    chosen = option.startswith("--")
    if why in (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT)):
        fix = "free some space on that disk" + (", or choose another place" if chosen else "")
    elif chosen:
        fix = "choose a file in a folder you can write to"
    else:
        fix = "make its folder writable, or work on a copy of it that is"
    return GxError(f"cannot write {option} '{path}' ({why}); {fix}")


def check_replaceable(path: Path, option: str = "--out") -> None:
    """Refuse to put a file where a folder is, or over a file of another kind than gx writes."""
    if path.is_dir():
        example = path / f"out{path.suffix}"
        raise GxError(f"{option} '{path}' is a folder; give a file name, e.g. {example}")
    signature = SIGNATURES.get(path.suffix.lower())
    if signature is None or not path.is_file() or path.stat().st_size == 0:
        return
    magic, kind = signature
    try:
        with path.open("rb") as stream:
            head = stream.read(len(magic))
    except OSError as error:
        raise cannot_write(path, error, option) from None
    if head != magic:
        raise GxError(
            f"{option} '{path}' exists and is not {kind}, so gx does not replace it; choose "
            "another name, or move that file away first"
        )


def check_folder_writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder (existing or to be made) that cannot be written: a
    read-only place, a parent that is a file, missing permission. ``what`` names it: 'run
    folder'."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GxError(f"cannot create {what} '{folder}': '{existing}' is a file; choose another")
    # effective_ids: the user this process acts as, which a server may have switched to
    if os.access(existing, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    why = os.strerror(errno.EROFS if read_only else errno.EACCES)
    if existing == folder:
        raise GxError(
            f"cannot write {what} '{folder}' ({why}); make it writable, or work on a copy of "
            "it in a place you can write to"
        )
    raise GxError(
        f"cannot create {what} '{folder}' ({why} in '{existing}'); choose a place you can write to"
    )


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, innermost first."""
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_can_write(path: str | Path, option: str = "--out") -> None:
    """Refuse, before any work, a file that ``written_atomically`` could not write; leaves
    nothing behind."""
    path = Path(path)
    check_replaceable(path, option)
    made = _missing_parents(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.partial")
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise cannot_write(path, error, option) from None
    finally:
        _remove_empty(made)


@contextmanager
def written_atomically(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """A staging file beside ``path`` to write; it replaces ``path`` only if the block succeeds.

    An existing file at ``path`` is never left half-written, and a place that cannot be written
    (a missing parent that cannot be made, a read-only folder, a folder named like the file, a
    file of another kind under the name) is one ``GxError`` before any work is done. When the
    block fails, nothing is left behind: no staging file, and no folder made for it.
    """
    path = Path(path)
    check_replaceable(path, option)
    staging = path.with_name(f".{path.name}.partial")
    made = _missing_parents(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.touch()
    except OSError as error:
        _remove_empty(made)
        raise cannot_write(path, error, option) from None
    done = False
    try:
        yield staging
        os.replace(staging, path)
        done = True
    except WRITE_ERRORS as error:
        raise cannot_write(path, error, option) from None
    finally:
        staging.unlink(missing_ok=True)
        if not done:
            _remove_empty(made)


def write_text(path: str | Path, text: str, option: str = "--out") -> None:
    """``path`` holding ``text``, written all at once (see ``written_atomically``)."""
    with written_atomically(path, option) as staging:
        staging.write_text(text)


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a staging file beside it; an ``OSError`` (a full disk)
    leaves the previous ``path`` as it was and no staging file. For files gx keeps in its own
    folders (a run's records), whose errors the caller words."""
    staging = path.with_name(f".{path.name}.partial")
    try:
        with staging.open("wb") as stream:
            stream.write(data)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
