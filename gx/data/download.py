"""Find a dataset's files in a folder, check them against their published md5s, and download the
missing ones from its mirrors."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from gx.data.idx import is_gzipped
from gx.data.registry import PublishedFile, dataset_info, split_files
from gx.errors import GxError

# Seconds a connection may stay silent before a mirror counts as unreachable.
_TIMEOUT_S = 30
_CHUNK_BYTES = 1 << 16

# The md5 of each file hashed so far, by what identifies its bytes on disk: a process loads the
# same files several times (training, evaluation, every test of a session). Writing a file
# changes its ctime, which (unlike mtime) cannot be set back, so a changed file gets a new key.
_md5_by_file: dict[tuple[str, int, int, int, int], str] = {}
# A file rewritten within the file system's timestamp granularity can keep its key (git's
# "racily clean" problem), so only files left alone this long are remembered.
_SETTLED_NS = 2_000_000_000


class _ChecksumMismatch(Exception):
    """Internal: a mirror answered, but with bytes that are not the published file."""


def locate_file(root: Path, file: PublishedFile) -> Path | None:
    """The file in root, gzipped (preferred: its md5 is the published one) or un-gzipped."""
    for name in (file.name, file.raw_name):
        if (root / name).is_file():
            return root / name
    return None


def missing_files(root: Path, files: list[PublishedFile]) -> list[PublishedFile]:
    """The files found in root under neither of their names."""
    return [file for file in files if locate_file(root, file) is None]


def ensure_files(
    dataset: str, root: str | Path, split: str, download: bool, mirrors: list[str] | None = None
) -> dict[str, Path]:
    """Make sure every file of a split is in root, downloading missing ones when allowed.

    Gzipped files already there must have their published md5; a damaged one is refused.

    Returns where each file was found, keyed by its published (.gz) name. `mirrors` replaces the
    registry's base URLs (tests point it at a local server).
    """
    info = dataset_info(dataset)
    files = split_files(info, split)
    root = Path(root).expanduser()
    for file in files:
        found = locate_file(root, file)
        if found is not None:
            _check_published(found, file)
    missing = missing_files(root, files)
    failures: dict[str, list[str]] = {}
    if missing and download:
        failures = _download_missing(
            missing, root, list(info.mirrors if mirrors is None else mirrors)
        )
        missing = missing_files(root, files)
    if missing:
        raise GxError(_missing_message(dataset, root, missing, download, failures))
    located = {file.name: locate_file(root, file) for file in files}
    return {name: path for name, path in located.items() if path is not None}


def _check_published(path: Path, file: PublishedFile) -> None:
    """Refuse a gzipped file on disk whose md5 is not the published one (truncated or altered)."""
    # Un-gzipped files (under either name: gx.data.idx decides by content) are not checked: the
    # mirrors publish md5s of the gzipped bytes only. Their idx header and length still have to
    # agree, or reading them fails.
    if not is_gzipped(path):
        return
    found = _file_md5(path)
    if found != file.md5:
        raise GxError(
            f"{path} is not the published {file.name}: its md5 is {found}, expected "
            f"{file.md5}, so it is truncated, corrupt or not the original. Fix: delete "
            "it so gx downloads it again, or put the original file there"
        )


def _file_md5(path: Path) -> str:
    """The md5 of a file's bytes, hashed at most once per process while the file is unchanged."""
    status = path.stat()
    key = (
        str(path.resolve()),
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )
    if key in _md5_by_file:
        return _md5_by_file[key]
    md5 = _new_md5()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            md5.update(chunk)
    if time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) >= _SETTLED_NS:
        _md5_by_file[key] = md5.hexdigest()
    return md5.hexdigest()


def _new_md5() -> hashlib._Hash:
    # usedforsecurity=False: md5 here is a checksum, and FIPS-mode Pythons refuse it otherwise.
    return hashlib.md5(usedforsecurity=False)


def _missing_message(
    dataset: str,
    root: Path,
    missing: list[PublishedFile],
    download: bool,
    failures: dict[str, list[str]],
) -> str:
    names = ", ".join(file.name for file in missing)
    if not download:
        why = "downloading is off"
    else:
        reasons = "; ".join(
            f"{file.name}: {' / '.join(failures.get(file.name) or ['no mirror reachable'])}"
            for file in missing
        )
        why = f"downloading failed ({reasons})"
    return (
        f"{dataset}: missing {names} in {root} and {why}. Fix: put those files (gzipped, or "
        f"un-gzipped without '.gz') in {root}, or point --data-root or GX_DATA_ROOT at a "
        "folder that has them"
    )


def _download_missing(
    files: list[PublishedFile], root: Path, mirrors: list[str]
) -> dict[str, list[str]]:
    """Fetch each file from the first mirror that delivers it intact; returns why others failed."""
    _make_folder(root)
    reachable = list(mirrors)
    failures: dict[str, list[str]] = {}
    for file in files:
        reasons = []
        for mirror in list(reachable):
            url = mirror.rstrip("/") + "/" + file.name
            try:
                _download_verified(url, root / file.name, file.md5)
                break
            except _ChecksumMismatch as mismatch:
                reasons.append(f"{url}: {mismatch}")
            except urllib.error.HTTPError as error:
                reasons.append(f"{url}: HTTP {error.code} {error.reason}")
            except (urllib.error.URLError, OSError) as error:
                reasons.append(f"{url}: {getattr(error, 'reason', error)}")
                # A host that cannot be reached will not answer for the next file either; dropping
                # it saves a timeout per file when there is no network.
                reachable.remove(mirror)
        else:
            failures[file.name] = reasons
    return failures


def _make_folder(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GxError(
            f"cannot create data folder {root} ({error.strerror}). Fix: point "
            "--data-root or GX_DATA_ROOT at a writable folder"
        ) from None


def _download_verified(url: str, target: Path, expected_md5: str) -> None:
    """Download url into target, which only ever appears complete and with the expected md5."""
    # A temporary name in the same folder, renamed at the end: an interrupted download never
    # leaves a half file under the real name, and the rename is atomic on one file system.
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as out:
            md5 = _stream(url, out, target.name)
        if md5 != expected_md5:
            raise _ChecksumMismatch(f"md5 mismatch (got {md5}, expected {expected_md5})")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _stream(url: str, out: BinaryIO, label: str) -> str:
    """Copy url's body into out with a progress bar on stderr; returns the body's md5."""
    md5 = _new_md5()
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        size = response.headers.get("Content-Length")
        with tqdm(
            total=int(size) if size else None,
            unit="B",
            unit_scale=True,
            desc=label,
            file=sys.stderr,
            leave=False,
        ) as progress:
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                md5.update(chunk)
                progress.update(len(chunk))
    return md5.hexdigest()
