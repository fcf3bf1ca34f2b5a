"""The fault battery: what goes wrong around a command ends in one line and loses nothing.

Every case runs a ``gx`` command against a fault (a read-only place, a parent that is a file,
missing permission, a full disk, damaged weights, a stop signal, a dead process, a usage
mistake) and asserts the exit status, the one line it prints (``error: ...``, or for a stop by
signal the line that says how to continue) and, through a SHA-256 of every file in the case's
folder before and after, that no existing file changed, nothing was left half-written and
nothing of a run was lost.

Full disks are small tmpfs file systems the test mounts, and read-only places tmpfs mounts
remounted read-only: both need root (CI runs as root), and those cases are skipped with that
reason otherwise. The cases as another user switch this process's effective user to 'nobody',
which needs root as well. Most cases run in this process on PyTorch with the tiny models of
tiny.py; stop signals, --nproc and the import of a raw pickle run ``gx`` in its own process;
the cases marked jittor are the few that need Jittor's kernels.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner, Result
from import_networks import TinyGenerator
from support import REPO_ROOT
from tiny import tiny_settings

import gx.train.run as run_module
from gx.checkpoint import load_checkpoint
from gx.cli import main
from gx.waiting import current_waits, describe

NOBODY = 65534
NETWORKS_FILE = Path(__file__).resolve().parent / "import_networks.py"
# A guard against a process that never starts training, not a speed limit.
START_DEADLINE_S = 600


# -- the case's folder, and what must not change in it -------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file's SHA-256 and every folder, by path under ``folder``."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        entries[name] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


@dataclass
class Workspace:
    """A case's folder: the tiny experiments, a trained run of each, and files an --out may
    name by mistake. Nothing in it may change unless a case says so."""

    root: Path
    data: Path  # the MNIST test split (read-only, with its cached evaluation classifier)

    @property
    def tiny(self) -> Path:  # conditional
        return self.root / "tiny.yaml"

    @property
    def plain(self) -> Path:  # unconditional
        return self.root / "plain.yaml"

    @property
    def run(self) -> Path:  # tiny, trained 2 steps on torch
        return self.root / "run"

    @property
    def plain_run(self) -> Path:
        return self.root / "plain-run"

    @property
    def notes(self) -> Path:  # a file where a folder may be named
        return self.root / "notes.txt"

    def run_arguments(self, *extra: object, experiment: Path | None = None) -> list[str]:
        return [
            "run",
            str(experiment or self.tiny),
            "--backend",
            "torch",
            "--device",
            "cpu",
            "--data-root",
            str(self.data),
            *map(str, extra),
        ]


def gx(*arguments: object) -> Result:
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def assert_one_error(result: Result, *parts: str, status: int = 2) -> str:
    """Exit ``status``, nothing on stdout, one ``error:`` line holding ``parts``; no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == status, result.output
    assert result.stdout == "", result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def write_experiments(folder: Path) -> None:
    train = {"max_steps": 2, "sample_every": 1000, "checkpoint_every": 1000}
    (folder / "tiny.yaml").write_text(yaml.safe_dump(tiny_settings(train=train)))
    (folder / "plain.yaml").write_text(
        yaml.safe_dump(tiny_settings(conditional=False, train=train) | {"name": "plain"})
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Workspace:
    """The workspace every case copies: experiments, two trained runs, a PNG, an array."""
    root = tmp_path_factory.mktemp("faults-base")
    write_experiments(root)
    workspace = Workspace(root, mnist_root)
    for experiment, out in (
        (workspace.tiny, workspace.run),
        (workspace.plain, workspace.plain_run),
    ):
        result = gx(*workspace.run_arguments("--out", out, experiment=experiment))
        assert result.exit_code == 0, result.output
    workspace.notes.write_text("keep me")
    result = gx("generate", "--checkpoint", workspace.run, "--out", root / "grid.png")
    assert result.exit_code == 0, result.output
    np.save(root / "noise.npy", np.zeros((3, 16), np.float32))
    torch.save(TinyGenerator().state_dict(), root / "G.pt")
    return workspace


@pytest.fixture
def ws(base: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A copy of the base workspace as the working folder; after the case, not one byte in it
    may differ."""
    root = tmp_path / "ws"
    shutil.copytree(base.root, root)
    monkeypatch.chdir(root)
    before = snapshot(root)
    yield Workspace(root, base.data)
    assert snapshot(root) == before


# -- places that cannot be written ---------------------------------------------------------------


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (CI runs the suite as root)")


def mount_tmpfs(folder: Path, size: int, *options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs"]
    done = subprocess.run([*command, str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def read_only(ws: Workspace, tmp_path: Path) -> Iterator[Path]:
    """A read-only file system holding a copy of the trained run, 'run', and a PNG."""
    need_root("a read-only file system")
    folder = tmp_path / "read-only"
    mount_tmpfs(folder, 4 << 20)
    try:
        shutil.copytree(ws.run, folder / "run")
        shutil.copy(ws.root / "grid.png", folder / "grid.png")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        before = snapshot(folder)
        yield folder
        assert snapshot(folder) == before
    finally:
        unmount(folder)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``make(free, *copies)``: a small file system holding ``copies`` (files or folders), then
    filled up until ``free`` bytes are left."""
    need_root("a small file system to fill")
    mounted = []

    def make(free: int, *copies: Path) -> Path:
        folder = tmp_path / f"disk-{len(mounted)}"
        mount_tmpfs(folder, 8 << 20)
        mounted.append(folder)
        for copy in copies:
            if copy.is_dir():
                shutil.copytree(copy, folder / copy.name)
            else:
                shutil.copy(copy, folder / copy.name)
        status = os.statvfs(folder)
        filler = status.f_bavail * status.f_frsize - free
        with (folder / ".filler").open("wb") as stream:
            stream.truncate(0)
            stream.write(b"\0" * max(filler, 0))
        return folder

    yield make
    for folder in mounted:
        unmount(folder)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """This process acts as the unprivileged user 'nobody' inside the block."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def locked(ws: Workspace) -> Iterator[Path]:
    """A folder 'nobody' may read but not write, holding the run and the experiment."""
    need_root("acting as another user")
    folder = Path(tempfile.mkdtemp(prefix="gx-faults-"))
    try:
        shutil.copytree(ws.run, folder / "run")
        shutil.copy(ws.tiny, folder / "tiny.yaml")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        before = snapshot(folder)
        yield folder
        assert snapshot(folder) == before
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755)
        shutil.rmtree(folder)


WRITING_COMMANDS = {
    # a command that writes, and the arguments that make it write ``out`` (a file)
    "run": lambda ws, out: ws.run_arguments("--out", out),
    "generate png": lambda ws, out: ["generate", "--checkpoint", ws.run, "--out", out / "g.png"],
    "generate npy": lambda ws, out: ["generate", "--checkpoint", ws.run, "--out", out / "g.npy"],
    "strip": lambda ws, out: ["strip", "123", "--checkpoint", ws.run, "--out", out / "s.png"],
    "import": lambda ws, out: [
        "import",
        f"{NETWORKS_FILE}:TinyGenerator",
        "--input",
        "z=8",
        "--weights",
        ws.root / "G.pt",
        "--out",
        out / "g.yaml",
    ],  # fmt: skip
    "export": lambda ws, out: ["export", "--checkpoint", ws.run, "--out", out / "g.onnx"],
    "graph": lambda ws, out: ["graph", ws.tiny, "--out", out / "g.svg"],
    "parity": lambda ws, out: ["parity", ws.tiny, "--out", out / "report"],
}


@pytest.mark.parametrize("command", sorted(WRITING_COMMANDS))
@pytest.mark.slow
def test_a_parent_that_is_a_file(ws: Workspace, command: str) -> None:
    result = gx(*WRITING_COMMANDS[command](ws, ws.notes / "inside"))
    assert_one_error(result, "notes.txt")


@pytest.mark.parametrize("command", sorted(WRITING_COMMANDS))
def test_a_read_only_file_system(ws: Workspace, read_only: Path, command: str) -> None:
    result = gx(*WRITING_COMMANDS[command](ws, read_only / "new"))
    line = assert_one_error(result, str(read_only))
    assert "Read-only file system" in line or "read-only" in line, line


@pytest.mark.parametrize("command", ["run", "generate png", "strip"])
def test_a_folder_another_user_cannot_write(ws: Workspace, locked: Path, command: str) -> None:
    moved = {str(ws.run): str(locked / "run"), str(ws.tiny): str(locked / "tiny.yaml")}
    new = locked / "new"
    arguments = [moved.get(str(part), str(part)) for part in WRITING_COMMANDS[command](ws, new)]
    with as_nobody():
        result = gx(*arguments)
    assert_one_error(result, str(locked), "Permission denied")


def test_eval_in_a_read_only_run_folder(ws: Workspace, read_only: Path) -> None:
    result = gx("eval", read_only / "run", "--n", "20", "--data-root", ws.data)
    assert_one_error(result, "eval.json", "Read-only file system")


def test_resume_in_a_read_only_run_folder(ws: Workspace, read_only: Path) -> None:
    result = gx(*ws.run_arguments("--resume", read_only / "run", "--max-steps", "4"))
    assert_one_error(result, "cannot write run folder", "Read-only file system")


def test_resume_as_a_user_who_cannot_write_the_run(ws: Workspace, locked: Path) -> None:
    arguments = ws.run_arguments("--resume", locked / "run", experiment=locked / "tiny.yaml")
    with as_nobody():
        result = gx(*arguments, "--max-steps", "4")
    assert_one_error(result, "cannot write run folder", "Permission denied")


# -- full disks ----------------------------------------------------------------------------------


def test_full_disk_at_a_new_run_s_first_checkpoint(ws: Workspace, full_disk) -> None:
    disk = full_disk(20_000)
    result = gx(*ws.run_arguments("--out", disk / "run"))
    assert_one_error(result, "No space left on device", "kept nothing", "start it again")
    assert sorted(path.name for path in disk.iterdir()) == [".filler"]


def test_full_disk_at_a_later_checkpoint_keeps_the_earlier_one(ws: Workspace, full_disk) -> None:
    # Room for the step-0 checkpoint (no Adam moments yet), not for the next one (with them).
    disk = full_disk(200_000)
    run = disk / "run"
    result = gx(
        *ws.run_arguments("--out", run, "--max-steps", "4", "--set", "train.checkpoint_every=2")
    )
    assert_one_error(
        result, "No space left on device", "its checkpoint holds step 0", f"--resume {run}"
    )
    assert sorted(path.name for path in run.iterdir()) == [
        "checkpoint", "config.yaml", "metrics.jsonl", "run.json", "samples",
    ]  # fmt: skip
    assert load_checkpoint(run).state["step"] == 0
    assert (run / "metrics.jsonl").read_text() == ""  # the steps the checkpoint holds: none
    assert json.loads((run / "run.json").read_text())["segments"] == []
    (disk / ".filler").unlink()
    resumed = gx(*ws.run_arguments("--resume", run, "--max-steps", "4"))
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run).state["step"] == 4


def test_full_disk_on_resume_leaves_the_run_as_it_was(ws: Workspace, full_disk) -> None:
    disk = full_disk(100_000, ws.run)
    before = snapshot(disk / "run")
    result = gx(*ws.run_arguments("--resume", disk / "run", "--max-steps", "4"))
    assert_one_error(result, "No space left on device", "its checkpoint holds step 2")
    assert snapshot(disk / "run") == before


@pytest.mark.parametrize(
    "command", ["generate png", "generate npy", "strip", "import", "export", "graph"]
)
def test_full_disk_leaves_no_partial_file(ws: Workspace, full_disk, command: str) -> None:
    disk = full_disk(0)
    result = gx(*WRITING_COMMANDS[command](ws, disk))
    # graphviz's dot reports a full disk in its own words
    parts = (
        ["could not render"]
        if command == "graph"
        else ["No space left on device", "free some space"]
    )
    assert_one_error(result, *parts)
    assert sorted(path.name for path in disk.iterdir()) == [".filler"]


def test_full_disk_keeps_the_file_it_would_replace(ws: Workspace, full_disk) -> None:
    disk = full_disk(0, ws.root / "grid.png")
    before = snapshot(disk)
    result = gx("generate", "--checkpoint", ws.run, "--count", "2", "--out", disk / "grid.png")
    assert_one_error(result, "No space left on device")
    assert snapshot(disk) == before


def test_full_disk_at_eval_json(ws: Workspace, full_disk) -> None:
    disk = full_disk(0, ws.run)
    before = snapshot(disk)
    result = gx("eval", disk / "run", "--n", "20", "--data-root", ws.data)
    assert_one_error(result, "eval.json", "No space left on device")
    assert snapshot(disk) == before


@pytest.mark.slow
def test_full_disk_at_the_classifier_cache(ws: Workspace, full_disk, monkeypatch) -> None:
    import functools

    import gx.evaluate as evaluate_package
    from gx.evaluate.classifier import ClassifierRecipe
    from gx.evaluate.classifier_training import train_classifier

    monkeypatch.setattr(
        evaluate_package,
        "train_classifier",
        functools.partial(train_classifier, recipe=ClassifierRecipe(epochs=1, train_images=64)),
    )
    data = full_disk(30_000, *ws.data.glob("t10k-*"))
    result = gx("classifier", "train", "--device", "cpu", "--data-root", data)
    assert_one_error(result, "cannot save the evaluation classifier", "No space left on device")
    assert sorted(path.name for path in (data / "classifiers").iterdir()) == []


# -- damaged weights ------------------------------------------------------------------------------


def damage(run: Path, name: str = "generator.safetensors", checksums: bool = True) -> None:
    """4,000 bytes of a weights file overwritten with 0xff (NaN as float32); without
    ``checksums`` the checkpoint looks like one written before gx recorded them."""
    path = run / "checkpoint" / name
    data = bytearray(path.read_bytes())
    data[len(data) - 4000 :] = b"\xff" * 4000
    path.write_bytes(bytes(data))
    if not checksums:
        state_path = run / "checkpoint" / "state.json"
        state = json.loads(state_path.read_text())
        del state["files"]
        state_path.write_text(json.dumps(state))


@pytest.fixture
def damaged(ws: Workspace, tmp_path: Path) -> Iterator[Path]:
    """A copy of the run whose generator weights are damaged; it must stay as it is."""
    run = tmp_path / "damaged"
    shutil.copytree(ws.run, run)
    damage(run)
    before = snapshot(run)
    yield run
    assert snapshot(run) == before


DAMAGED_READERS = {
    "generate": lambda ws, run: ["generate", "--checkpoint", run, "--out", ws.root / "new.png"],
    "strip": lambda ws, run: ["strip", "123", "--checkpoint", run, "--out", ws.root / "new.png"],
    "eval": lambda ws, run: ["eval", run, "--n", "20", "--data-root", ws.data],
    "export": lambda ws, run: ["export", "--checkpoint", run, "--out", ws.root / "new.onnx"],
    "resume": lambda ws, run: ws.run_arguments("--resume", run, "--max-steps", "4"),
    "resume --nproc 2": lambda ws, run: ws.run_arguments("--resume", run, "--nproc", "2"),
}


@pytest.mark.parametrize("command", sorted(DAMAGED_READERS))
def test_damaged_weights_are_refused_naming_the_file(ws: Workspace, damaged: Path, command: str):
    result = gx(*DAMAGED_READERS[command](ws, damaged))
    assert_one_error(result, "generator.safetensors is not the file gx wrote", "intact copy")


@pytest.mark.parametrize("name", ["discriminator.safetensors", "optimizer_g.safetensors"])
def test_every_file_of_a_checkpoint_is_checked(ws: Workspace, tmp_path: Path, name: str) -> None:
    run = tmp_path / "damaged"
    shutil.copytree(ws.run, run)
    damage(run, name)
    result = gx(*ws.run_arguments("--resume", run, "--max-steps", "4"))
    assert_one_error(result, f"{name} is not the file gx wrote")


def test_non_finite_weights_of_an_older_checkpoint(ws: Workspace, tmp_path: Path) -> None:
    run = tmp_path / "older"
    shutil.copytree(ws.run, run)
    damage(run, checksums=False)
    result = gx("generate", "--checkpoint", run, "--out", ws.root / "new.png")
    line = assert_one_error(result, "holds weights that are not finite", "GX_ALLOW_NONFINITE=1")
    assert "(generator.safetensors: " in line, line


def test_allowed_non_finite_weights_name_the_checkpoint_on_resume(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "older"
    shutil.copytree(ws.run, run)
    damage(run, checksums=False)
    monkeypatch.setenv("GX_ALLOW_NONFINITE", "1")
    result = gx(*ws.run_arguments("--resume", run, "--max-steps", "4"))
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the loss became non-finite at step 3, the first step after")
    assert "whose checkpoint holds weights that are not finite" in line
    assert "resume from an intact copy" in line
    assert load_checkpoint(run).state["step"] == 2  # nothing non-finite was saved over it


def test_a_checkpoint_without_checksums_still_loads(ws: Workspace, tmp_path: Path) -> None:
    run = tmp_path / "older"
    shutil.copytree(ws.run, run)
    state_path = run / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    del state["files"]
    state_path.write_text(json.dumps(state))
    result = gx("generate", "--checkpoint", run, "--out", tmp_path / "g.npy")
    assert result.exit_code == 0, result.output
    images = np.load(tmp_path / "g.npy")
    assert images.shape == (10, 1, 28, 28) and np.isfinite(images).all()


@pytest.mark.parametrize("damage_kind", ["truncated state.json", "missing weights file"])
def test_a_checkpoint_missing_its_parts(ws: Workspace, tmp_path: Path, damage_kind: str) -> None:
    run = tmp_path / "broken"
    shutil.copytree(ws.run, run)
    if damage_kind == "truncated state.json":
        path = run / "checkpoint" / "state.json"
        path.write_text(path.read_text()[:100])
    else:
        (run / "checkpoint" / "optimizer_d.safetensors").unlink()
    result = gx(*ws.run_arguments("--resume", run, "--max-steps", "4"))
    assert_one_error(result, "cannot be read", "damaged or not a gx checkpoint")


# -- usage mistakes click checks ------------------------------------------------------------------

USAGE = {
    "run --max-steps 0": (lambda ws: ws.run_arguments("--max-steps", "0"), "'--max-steps'"),
    "run --nproc 0": (lambda ws: ws.run_arguments("--nproc", "0"), "'--nproc'"),
    "bench --batch 0": (lambda ws: ["bench", ws.tiny, "--batch", "0"], "'--batch'"),
    "run --out a file": (lambda ws: ws.run_arguments("--out", ws.notes), "is a file"),
    "run --resume a file": (lambda ws: ws.run_arguments("--resume", ws.notes), "is a file"),
    "run EXPERIMENT a folder": (lambda ws: ["run", ws.run], "is a directory"),
    "eval RUN_DIR a file": (lambda ws: ["eval", ws.notes], "is a file"),
    "export --out a folder": (
        lambda ws: ["export", "--checkpoint", ws.run, "--out", ws.run],
        "is a directory",
    ),
    "generate without --out": (lambda ws: ["generate", "--checkpoint", ws.run], "'--out'"),
    "strip --scale 0": (
        lambda ws: ["strip", "1", "--checkpoint", ws.run, "--scale", "0"],
        "'--scale'",
    ),
    "parity --steps 0": (lambda ws: ["parity", ws.tiny, "--steps", "0"], "'--steps'"),
    "classifier --channels 2": (
        lambda ws: ["classifier", "train", "--channels", "2"],
        "'--channels'",
    ),
    "unknown command": (lambda ws: ["rn", ws.tiny], "No such command 'rn'"),
    "unknown backend": (lambda ws: ws.run_arguments("--backend", "tensorflow"), "'tensorflow'"),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_click_usage_errors_are_one_line(ws: Workspace, case: str) -> None:
    arguments, part = USAGE[case]
    line = assert_one_error(gx(*arguments(ws)), part)
    assert re.search(r"\(see 'gx( [a-z]+)* --help'\)$", line), line


# -- outputs that would replace something else -------------------------------------------------


OTHER_KIND = {
    "generate --out a folder named .png": (
        lambda ws: ["generate", "--checkpoint", ws.run, "--out", ws.run / "samples.png"],
        "samples.png' is a folder",
        lambda ws: (ws.run / "samples.png").mkdir(),
    ),
    "generate .png over another kind": (
        lambda ws: ["generate", "--checkpoint", ws.run, "--out", ws.root / "noise.png"],
        "exists and is not a PNG image",
        lambda ws: shutil.copy(ws.root / "noise.npy", ws.root / "noise.png"),
    ),
    "generate .npy over another kind": (
        lambda ws: ["generate", "--checkpoint", ws.run, "--out", ws.root / "grid.npy"],
        "exists and is not a .npy array",
        lambda ws: shutil.copy(ws.root / "grid.png", ws.root / "grid.npy"),
    ),
    "strip --out not a .png": (
        lambda ws: ["strip", "123", "--checkpoint", ws.run, "--out", ws.notes],
        "--out must end in .png",
        None,
    ),
    "strip .png over another kind": (
        lambda ws: ["strip", "123", "--checkpoint", ws.run, "--out", ws.root / "noise.png"],
        "exists and is not a PNG image",
        lambda ws: shutil.copy(ws.root / "noise.npy", ws.root / "noise.png"),
    ),
}


@pytest.mark.parametrize("case", sorted(OTHER_KIND))
def test_an_output_of_another_kind_is_not_replaced(base, tmp_path, monkeypatch, case) -> None:
    arguments, part, prepare = OTHER_KIND[case]
    root = tmp_path / "ws"
    shutil.copytree(base.root, root)
    monkeypatch.chdir(root)
    workspace = Workspace(root, base.data)
    if prepare is not None:
        prepare(workspace)
    before = snapshot(root)
    assert_one_error(gx(*arguments(workspace)), part)
    assert snapshot(root) == before


# -- data and arguments before the framework -----------------------------------------------------


def test_one_class_for_a_ten_class_model(ws: Workspace, tmp_path: Path) -> None:
    from PIL import Image

    images = tmp_path / "images"
    (images / "seven").mkdir(parents=True)
    for index in range(4):
        Image.new("L", (28, 28), 40 * index).save(images / "seven" / f"{index}.png")
    settings = tiny_settings(data={"dataset": "folder", "root": str(images), "split": "train"})
    experiment = tmp_path / "one-class.yaml"
    experiment.write_text(yaml.safe_dump(settings))
    result = gx("run", experiment, "--backend", "torch", "--device", "cpu", "--out", tmp_path / "r")
    assert_one_error(result, "has 1 class(es) (seven) but model 'custom' draws 10", "unconditional")
    assert not (tmp_path / "r").exists()


FRAMEWORK_FREE = """
import json, sys
from gx.cli import main
try:
    main({arguments!r})
except SystemExit as stop:
    code = stop.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "jittor"))
print(json.dumps({{"code": code, "loaded": loaded}}))
"""


@pytest.mark.parametrize(
    "case", ["run on jittor without its data", "generate on jittor with bad labels"]
)
@pytest.mark.slow
def test_mistakes_are_found_before_jittor_loads(ws: Workspace, tmp_path: Path, case: str) -> None:
    if case == "run on jittor without its data":
        arguments = ["run", str(ws.tiny), "--backend", "jittor", "--data-root", str(tmp_path),
                     "--set", "data.download=false", "--out", str(tmp_path / "r")]  # fmt: skip
        part = "downloading is off"
    else:
        arguments = ["generate", "--checkpoint", str(ws.run), "--backend", "jittor",
                     "--labels", "3,x", "--out", str(tmp_path / "g.png")]  # fmt: skip
        part = "--labels must be comma-separated integers"
    code = textwrap.dedent(FRAMEWORK_FREE.format(arguments=arguments))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 2, "loaded": []}, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and part in line, line


def test_a_wait_on_another_process_s_lock_is_named(tmp_path: Path) -> None:
    """What gx.waiting reports while this process waits on a lock another process holds (the
    watcher says it once such a wait passes a few seconds)."""
    path = tmp_path / "jittor.lock"
    path.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"f = open({str(path)!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        waiting = path.open("w")
        thread = threading.Thread(target=fcntl.flock, args=(waiting, fcntl.LOCK_EX), daemon=True)
        thread.start()
        waits = []
        while not waits:  # the thread is blocked as soon as the kernel lists it
            assert thread.is_alive()
            time.sleep(0.01)
            waits = current_waits(Path("/proc/locks").read_text(), os.getpid())
        [wait] = waits
        assert wait.path == path and wait.holder == holder.pid
        line = describe(wait)
        assert f"waiting for the lock on {path}, held by process {holder.pid}" in line
        assert "Jittor's kernel cache" in line
    finally:
        holder.kill()
        holder.wait()
    thread.join(timeout=60)
    waiting.close()


@pytest.mark.slow
def test_import_of_a_raw_pickle_is_one_line(ws: Workspace, tmp_path: Path) -> None:
    import pickle

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"model.0.weight": object()}, protocol=4))
    done = subprocess.run(
        [sys.executable, "-m", "gx", "import", f"{NETWORKS_FILE}:TinyGenerator",
         "--input", "z=8", "--weights", str(raw), "--out", str(tmp_path / "g.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == "", done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: --weights {raw} cannot be read as tensors"), line
    assert not (tmp_path / "g.yaml").exists()


# -- stop signals ---------------------------------------------------------------------------------


def start_run(ws: Workspace, folder: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gx", *ws.run_arguments("--out", folder, "--max-steps", "100000",
                                                       *extra)],
        cwd=ws.root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for_steps(process: subprocess.Popen, folder: Path, steps: int) -> None:
    metrics = folder / "metrics.jsonl"
    deadline = time.monotonic() + START_DEADLINE_S
    while not (metrics.exists() and metrics.read_text().count("\n") >= steps):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {steps} steps within {START_DEADLINE_S} s"
        time.sleep(0.05)


def assert_stopped_and_saved(folder: Path, stderr: str, how: str) -> int:
    """The run said how to continue (its one line on stderr), saved its checkpoint at the step
    it stopped at, and keeps every step up to it; returns the step."""
    line = re.fullmatch(
        f"{how} at step (\\d+); continue with --resume {re.escape(str(folder))}\n", stderr
    )
    assert line, stderr
    step = int(line[1])
    assert load_checkpoint(folder).state["step"] == step
    records = [json.loads(text) for text in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == list(range(1, step + 1))
    assert json.loads((folder / "summary.json").read_text())["stopped"] == "interrupted"
    assert sorted(path.name for path in folder.glob("checkpoint*")) == ["checkpoint"]
    return step


@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGUSR1", 138), ("SIGINT", 130)])
@pytest.mark.slow
def test_a_stop_signal_saves_and_says_how_to_continue(ws, tmp_path, name, status) -> None:
    folder = tmp_path / "stopped"
    process = start_run(ws, folder)
    try:
        wait_for_steps(process, folder, 2)
        process.send_signal(getattr(signal, name))
        stdout, stderr = process.communicate(timeout=START_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == status, stderr
    how = "interrupted" if name == "SIGINT" else f"stopped by {name}"
    step = assert_stopped_and_saved(folder, stderr, how)
    assert stdout.startswith(f"run folder: {folder}\nsteps: {step} ")


def signals_during_the_last_save(count: int) -> Callable[..., None]:
    """A save_checkpoint that, for the save after a stop, first receives ``count`` more Ctrl-C."""
    real = run_module.save_checkpoint

    def save(folder: Path, checkpoint: Any) -> None:
        if checkpoint.state["step"] == 3:
            for _ in range(count):
                os.kill(os.getpid(), signal.SIGINT)
        real(folder, checkpoint)

    return save


@pytest.mark.parametrize("more", [1, 2])
@pytest.mark.slow
def test_more_ctrl_c_during_the_save(ws, tmp_path, monkeypatch, more) -> None:
    """Ctrl-C at step 3; during the save it starts, one more is reported (the save finishes),
    two more stop at once (the last complete checkpoint, step 0, is kept)."""
    from gx.train.gan import GanTrainer

    step = GanTrainer.step

    def step_then_ctrl_c(self, *arguments):
        result = step(self, *arguments)
        if self.step_index == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(GanTrainer, "step", step_then_ctrl_c)
    monkeypatch.setattr(run_module, "save_checkpoint", signals_during_the_last_save(more))
    folder = tmp_path / "run"
    result = gx(*ws.run_arguments("--out", folder, "--max-steps", "100"))
    assert result.exit_code == 130, result.output
    lines = result.stderr.splitlines()
    if more == 1:
        assert lines[0].startswith("SIGINT: already stopping; gx saves a checkpoint"), lines
        assert lines[1:] == [f"interrupted at step 3; continue with --resume {folder}"]
        assert load_checkpoint(folder).state["step"] == 3
    else:
        assert lines[1:] == [
            f"stopped at once by SIGINT: the checkpoint holds step 0 (the steps after it were "
            f"not saved); continue with --resume {folder}"
        ], lines
        assert load_checkpoint(folder).state["step"] == 0
        assert (folder / "metrics.jsonl").read_text() == ""
        assert sorted(path.name for path in folder.glob("checkpoint*")) == ["checkpoint"]
    monkeypatch.undo()
    resumed = gx(*ws.run_arguments("--resume", folder, "--max-steps", "5"))
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(folder).state["step"] == 5


FORKED_WORKER = """
import os, signal, time
from gx.stopping import StopRequests, stop_signals_end_the_command

with stop_signals_end_the_command(), StopRequests(None).installed():
    ready, started = os.pipe()
    worker = os.fork()
    if worker == 0:  # a framework's worker, forked while a run's handlers are in place
        os.write(started, b"1")  # running: a pool ends its workers long after forking them
        time.sleep(600)
        os._exit(0)
    os.read(ready, 1)
    os.kill(worker, signal.SIGTERM)  # what a pool sends its workers when it ends
    _, status = os.waitpid(worker, 0)
    print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM)
"""


@pytest.mark.slow
def test_a_worker_forked_during_a_run_still_ends_on_sigterm() -> None:
    """Jittor's pool of compiler workers is forked while gx's stop handlers are in place; the
    pool ends its workers with SIGTERM when the process exits, and waits for them."""
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.stdout == "True\n", done.stderr


def test_sigterm_during_generate_leaves_no_file(ws: Workspace, monkeypatch) -> None:
    import gx.tools.generate as generate_module

    generate = generate_module.generate

    def terminated(*arguments: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return generate(*arguments)

    monkeypatch.setattr(generate_module, "generate", terminated)
    result = gx("generate", "--checkpoint", ws.run, "--out", ws.root / "grid.png")
    assert_one_error(result, "stopped by SIGTERM before the command finished", status=143)


# -- several processes ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_stops_every_process_at_one_step(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "stopped"
    process = start_run(ws, folder, "--nproc", "2")
    try:
        wait_for_steps(process, folder, 2)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=START_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr
    assert_stopped_and_saved(folder, stderr, "stopped by SIGTERM")
    assert load_checkpoint(folder).state["backend"]["processes"] == 2


@pytest.mark.slow
def test_a_killed_process_is_one_line_naming_it_and_its_log(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    process = start_run(ws, folder, "--nproc", "2")
    try:
        wait_for_steps(process, folder, 2)
        log = folder / "logs" / "rank-1.log"
        pid = int(re.search(r"pid (\d+)", log.read_text())[1])  # type: ignore[index]
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=START_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 2 and stdout == "", stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"error: rank 1 of the run was killed by SIGKILL (its output: {log})")
    assert line.endswith(f"--resume {folder} --nproc 2")
    # the last complete checkpoint: the first one, or one rank 0 finished after the kill
    saved = load_checkpoint(folder).state["step"]
    records = (folder / "metrics.jsonl").read_text().splitlines()
    assert 0 <= saved <= len(records)


# -- Jittor ---------------------------------------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.slow
def test_sigterm_saves_on_jittor(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "stopped"
    process = start_run(ws, folder, "--backend", "jittor")
    try:
        wait_for_steps(process, folder, 2)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=START_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, stderr
    assert_stopped_and_saved(folder, stderr, "stopped by SIGTERM")
    assert load_checkpoint(folder).state["backend"]["backend"] == "jittor"


@pytest.mark.jittor
def test_full_disk_at_a_jittor_checkpoint(ws: Workspace, full_disk) -> None:
    disk = full_disk(20_000)
    result = gx(*ws.run_arguments("--out", disk / "run", "--backend", "jittor"))
    assert_one_error(result, "No space left on device", "kept nothing")
    assert sorted(path.name for path in disk.iterdir()) == [".filler"]
