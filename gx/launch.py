"""``gx run``: in this process, in N processes (``--nproc N``), or as one of N processes.

``run`` is what the command does. With ``--nproc N`` it starts N processes through the
backend's own launcher and watches them: PyTorch's processes come from torch.distributed.run
(torchrun), Jittor's from OpenMPI's mpirun; each process is an ordinary ``gx run`` that finds
its rank in the launcher's environment (gx.distributed) and trains its share of every batch.
This process checks everything it can before starting them, passes Ctrl-C, SIGTERM and SIGUSR1
on as a stop request, and reports how the run ended in a line or two. The processes' own output
goes to ``logs/rank-R.log`` in the run folder, the launcher's to ``logs/launcher.log``; a
failure names the process, its signal or exit status, and its log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from gx.backends import default_backend, require_installed
from gx.checkpoint import load_checkpoint
from gx.config import Experiment, load_experiment
from gx.distributed import STOP_FILE_VARIABLE, World, current_world
from gx.errors import GxError
from gx.run_folder import RunFolder
from gx.run_folder.segments import Segments
from gx.stopping import StopNow, StopRequests, signal_name
from gx.train.run import RunOptions, prepare_run, run_experiment

# Set by gx's launcher: the run folder in whose logs/ each process writes its output.
LOGGED_RUN_VARIABLE = "GX_LOGGED_RUN"

OPENMPI_INSTALL = "apt-get install openmpi-bin libopenmpi-dev (as root; scripts/setup.sh does it)"
# OpenMPI refuses to start as root unless both are set; containers often forbid the
# cross-process memory copy (CMA) its shared-memory transport tries first, so gx turns it off.
OPENMPI_ENVIRONMENT = {
    "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}
OPENMPI_ROOT_ENVIRONMENT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def check_launcher(backend: str, nproc: int, device: str) -> None:
    """Refuse, before anything starts, what would make the processes fail."""
    require_installed(backend)
    if backend == "torch":
        if device != "cpu":
            import torch

            gpus = torch.cuda.device_count()
            if (device == "cuda" or gpus) and gpus < nproc:
                raise GxError(
                    f"--nproc {nproc} on CUDA needs {nproc} GPUs (one per process, "
                    f"NCCL), but this machine has {gpus}; use --nproc {max(gpus, 1)}, "
                    "or --device cpu to train on CPU processes (gloo)"
                )
        return
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise GxError(
            f"--nproc with Jittor needs OpenMPI's mpirun, which is not installed; "
            f"install it with: {OPENMPI_INSTALL}"
        )
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" not in version:
        raise GxError(
            f"{mpirun} is not OpenMPI's (Jittor works with OpenMPI only); install it "
            f"with: {OPENMPI_INSTALL}, and put its mpirun first on PATH"
        )
    if os.environ.get("use_mpi") == "0":
        raise GxError(
            "Jittor's MPI support is switched off by use_mpi=0 in the environment; "
            "unset use_mpi to train with --nproc"
        )
    if not (os.environ.get("mpicc_path") or shutil.which("mpicc")):
        raise GxError(
            "Jittor builds its MPI support with mpicc, which is not installed; "
            f"install it with: {OPENMPI_INSTALL}"
        )


def launch_command(backend: str, nproc: int, arguments: list[str]) -> list[str]:
    """The launcher's command line starting ``python -m gx ARGUMENTS`` ``nproc`` times."""
    if backend == "torch":
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "gx",
            *arguments,
        ]
    # --bind-to none: leave placement to the OS, which also sees other work on the machine.
    return ["mpirun", "-n", str(nproc), "--bind-to", "none", sys.executable, "-m", "gx", *arguments]


def launch_environment(backend: str) -> dict[str, str]:
    """This environment plus the launcher settings gx needs (a user's own values win)."""
    added = dict(OPENMPI_ENVIRONMENT) if backend == "jittor" else {}
    if backend == "jittor" and os.geteuid() == 0:
        added.update(OPENMPI_ROOT_ENVIRONMENT)
    return {**added, **os.environ}


@dataclass
class Ran:
    """How ``run`` ended, for the command's closing lines."""

    folder: Path
    steps: int
    summary: dict[str, Any]  # summary.json's
    # whether the exit status tells how the run ended (in a process a launcher started it must
    # be 0 after an orderly stop, so that the launcher leaves the others to finish)
    sets_status: bool


def run(experiment: str, settings: list[str], options: RunOptions, nproc: int | None) -> Ran | None:
    """``gx run``: train in this process, or in ``nproc`` (None: 1, or as many as the resumed
    run had), or, started by a launcher, as one of its processes. None for the processes of a
    launch other than rank 0, which print nothing."""
    world = current_world()
    if world.size > 1:
        redirect_to_log(world, options.command)
    if options.out is not None and options.resume is not None:
        raise GxError(
            "--out and --resume cannot be combined: a resumed run continues in its own folder"
        )
    loaded = load_experiment(experiment, settings)
    if world.size > 1:
        if nproc is not None:
            raise GxError(
                f"--nproc cannot be used in a process that {world.launcher} started; "
                "the launcher already decides the number of processes"
            )
        result = run_experiment(loaded, options)
        if not world.lead:
            return None
        return Ran(result.folder, result.steps, result.summary, sets_status=False)
    processes, note = processes_for(options.resume, nproc)
    if note and options.on_note is not None:
        options.on_note(note)
    if processes == 1:
        result = run_experiment(loaded, options)
        return Ran(result.folder, result.steps, result.summary, sets_status=True)
    folder, summary = run_in_processes(experiment, loaded, settings, options, processes)
    return Ran(folder, summary["steps"], summary, sets_status=True)


def redirect_to_log(world: World, command: str) -> None:
    """In a process started by gx's launcher: send this process's output (tracebacks and native
    crashes included) to its log in the run folder, after a line saying which launch it is."""
    folder = os.environ.get(LOGGED_RUN_VARIABLE)
    if not folder:
        return
    log = RunFolder(folder).rank_log(world.rank).open("a")
    log.write(f"--- {datetime.now().isoformat(timespec='seconds')} rank {world.rank} of "
              f"{world.size}, pid {os.getpid()}: {command}\n")  # fmt: skip
    log.flush()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(log.fileno(), stream.fileno())


@dataclass
class _Failure:
    """What the launcher's report says of the process that failed first."""

    rank: int | None
    signal: int | None  # the signal that killed it
    status: int | None  # its exit status when no signal did


# torchrun: the "Root Cause" block, "rank : 1 (local_rank: 1)" then "exitcode : -9 (pid: ...)";
# mpirun: "process rank 1 with PID 0 on node x exited on signal 9" or "Process name:
# [[19279,1],1]" then "Exit code: 3".
_TORCHRUN_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)
_MPIRUN_SIGNAL = re.compile(r"process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+)")
_MPIRUN_STATUS = re.compile(r"Process name: \[\[\d+,\d+\],(\d+)\]\s*Exit code:\s*(\d+)")


def _failure(report: str, code: int) -> _Failure:
    """The first failed process, from the launcher's output and exit status."""
    if found := _TORCHRUN_CAUSE.search(report):
        rank, status = int(found[1]), int(found[2])
        return _Failure(rank, -status if status < 0 else None, status if status >= 0 else None)
    if found := _MPIRUN_SIGNAL.search(report):
        return _Failure(int(found[1]), int(found[2]), None)
    if found := _MPIRUN_STATUS.search(report):
        return _Failure(int(found[1]), None, int(found[2]))
    if code > 128:  # a shell's way of saying "killed by signal code - 128"
        return _Failure(None, code - 128, None)
    return _Failure(None, -code if code < 0 else None, code if code >= 0 else None)


def _first_error(run: RunFolder, sizes: dict[Path, int]) -> str | None:
    """The first 'error: ...' line a process wrote during this launch (rank 0's first)."""
    for path in run.rank_logs():
        with path.open(errors="replace") as stream:
            stream.seek(sizes.get(path, 0))
            for line in stream:
                if line.startswith("error: "):
                    return line[len("error: ") :].rstrip("\n")
    return None


def launch(backend: str, nproc: int, arguments: list[str], folder: Path) -> dict[str, Any]:
    """Run ``gx ARGUMENTS`` in ``nproc`` processes; return the summary rank 0 wrote to ``folder``.

    A first Ctrl-C, SIGTERM or SIGUSR1 asks every process to stop after the current step and
    save (through a stop file: launchers themselves kill their processes on a signal); a second
    is reported; a third ends them at once (``StopNow``), the last complete checkpoint kept. A
    process that fails ends the run: its error line, or one line naming it and its log, is a
    ``GxError``.
    """
    run = RunFolder(folder)
    before = run.summary.stat().st_mtime_ns if run.summary.exists() else None
    sizes = {path: path.stat().st_size for path in [*run.rank_logs(), run.launcher_log]
             if path.exists()}  # fmt: skip
    stops = StopRequests(on_note=lambda line: print(line, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="gx-run-") as scratch:
        stop_file = Path(scratch) / "stop"
        environment = {
            **launch_environment(backend),
            STOP_FILE_VARIABLE: str(stop_file),
            LOGGED_RUN_VARIABLE: str(folder),
        }
        with run.launcher_log.open("a") as launcher_log:
            # A session of its own: the terminal's Ctrl-C reaches this process only, not the
            # launcher (which would kill the processes mid-step) nor the processes themselves.
            process = subprocess.Popen(
                launch_command(backend, nproc, arguments),
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=launcher_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            with stops.installed():
                try:
                    code = _wait(process, stops, stop_file)
                except StopNow as now:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    raise StopNow(
                        now.number,
                        f"stopped every process at once ({signal_name(now.number)}); the run "
                        f"folder '{folder}' keeps its last complete checkpoint: continue with "
                        f"--resume {folder} --nproc {nproc}",
                    ) from None
    written = run.summary.stat().st_mtime_ns if run.summary.exists() else None
    if code == 0 and written is not None and written != before:
        return json.loads(run.summary.read_text())
    error = _first_error(run, sizes)
    if error is not None:
        raise GxError(error)
    report = run.launcher_log.read_text(errors="replace")[sizes.get(run.launcher_log, 0) :]
    failure = _failure(report, code)
    who = "a process" if failure.rank is None else f"rank {failure.rank}"
    how = (
        f"was killed by {signal_name(failure.signal)}"
        if failure.signal
        else f"ended with exit status {failure.status}"
    )
    log = run.launcher_log if failure.rank is None else run.rank_log(failure.rank)
    raise GxError(
        f"{who} of the run {how} (its output: {log}), so all of them stopped; the run folder "
        f"'{folder}' is not finished: continue it from its last checkpoint with --resume "
        f"{folder} --nproc {nproc}"
    )


def _wait(process: subprocess.Popen, stops: StopRequests, stop_file: Path) -> int:
    """The launcher's exit status; a stop signal received meanwhile is passed on through the
    stop file, naming the signal (gx.distributed.World.stop_requested)."""
    passed = False
    while True:
        try:
            return process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        if stops.requested is not None and not passed:
            # Whole or not at all: a process reading the file between its creation and the
            # write would find it empty and stop as for Ctrl-C.
            staged = stop_file.with_name(stop_file.name + ".partial")
            staged.write_text(signal_name(stops.requested))
            os.replace(staged, stop_file)
            passed = True


def processes_for(resume: str | None, nproc: int | None) -> tuple[int, str]:
    """--nproc, else the number a resumed run was trained with, else 1; and a note to show when
    a resumed run continues in another number of processes ("" otherwise)."""
    if resume is None:
        return nproc or 1, ""
    state = load_checkpoint(resume).state
    trained = int((state.get("backend") or {}).get("processes", 1))
    if nproc is None or nproc == trained:
        return trained, ""
    return nproc, (
        f"note: run '{resume}' was trained in {trained} process(es) and continues in "
        f"{nproc}; the global batch stays the same, and with train.sync_batch_norm "
        "(the default) so do its batch-norm statistics, so the training is the same up "
        "to rounding; without it, batch-norm statistics now come from each process's "
        "share of the batch"
    )


def run_in_processes(
    experiment: str, loaded: Experiment, settings: list[str], options: RunOptions, nproc: int
) -> tuple[Path, dict[str, Any]]:
    """gx run --nproc N: check everything the run needs (gx.train.run.prepare_run), then start N
    ranks through the backend's launcher, each a plain ``gx run`` of the same experiment and run
    folder; returns the run folder and its summary.json."""
    backend = options.backend or default_backend()
    options = replace(options, backend=backend)
    prepared = prepare_run(loaded, options, World(size=nproc))
    check_launcher(backend, nproc, options.device)
    assert prepared.folder is not None  # rank 0's view: the folder is named
    folder = prepared.folder
    try:
        RunFolder(folder).logs.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GxError(
            f"cannot create run folder '{folder}' ({error.strerror}); choose an --out in a "
            "folder you can write to"
        ) from None
    first_step = prepared.resumed.state["step"] + 1 if prepared.resumed is not None else 1
    note = Segments(prepared.earlier, {"backend": backend}, first_step, "").continuation_note()
    if note and options.on_note is not None:
        options.on_note(note)
    resume = options.resume
    arguments = [
        "run",
        experiment,
        "--backend",
        backend,
        "--device",
        options.device,
        *[part for setting in settings for part in ("--set", setting)],
        *(["--data-root", options.data_root] if options.data_root else []),
        *(["--resume", resume] if resume else ["--out", str(folder)]),
    ]
    return folder, launch(backend, nproc, arguments, folder)
