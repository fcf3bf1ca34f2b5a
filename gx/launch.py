"""``gx run --nproc N``: start N processes through the backend's own launcher and watch them.

PyTorch's processes come from torch.distributed.run (torchrun), Jittor's from OpenMPI's mpirun;
each process is an ordinary ``gx run`` that finds its rank in the launcher's environment
(gx.distributed) and trains its share of every batch. This process only checks what it can
before starting them, forwards Ctrl-C as a stop request, and reports how the run ended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gx.backends import require_installed
from gx.distributed import STOP_FILE_VARIABLE
from gx.errors import GxError

if TYPE_CHECKING:
    from gx.config import Experiment
    from gx.train.run import RunOptions

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


def launch(backend: str, nproc: int, arguments: list[str], folder: Path) -> dict[str, Any]:
    """Run ``gx ARGUMENTS`` in ``nproc`` processes; return the summary rank 0 wrote to ``folder``.

    The processes print as usual (rank 0 the run's lines). A first Ctrl-C asks every process to
    stop after the current step and save (through a stop file: launchers themselves kill their
    processes on SIGINT); a second one ends them at once. A process that fails ends the run: its
    error line is shown once and a GxError names the way on.
    """
    summary_path = folder / "summary.json"
    before = summary_path.stat().st_mtime_ns if summary_path.exists() else None
    with tempfile.TemporaryDirectory(prefix="gx-run-") as scratch:
        stop_file = Path(scratch) / "stop"
        environment = {**launch_environment(backend), STOP_FILE_VARIABLE: str(stop_file)}
        # A session of its own: the terminal's Ctrl-C reaches this process only, not the
        # launcher (which would kill the processes mid-step) nor the processes themselves.
        process = subprocess.Popen(
            launch_command(backend, nproc, arguments),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )

        def interrupt(signum: int, frame: Any) -> None:
            if stop_file.exists():
                os.killpg(process.pid, signal.SIGTERM)
                return
            stop_file.touch()
            click.echo(
                "stopping every process after the current step (Ctrl-C again ends them at once)",
                err=True,
            )

        previous = signal.signal(signal.SIGINT, interrupt)
        try:
            error = _relay_output(process)
            code = process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    if error is not None and code != 0:
        raise GxError(error)
    written = summary_path.stat().st_mtime_ns if summary_path.exists() else None
    if code != 0 or written is None or written == before:
        raise GxError(
            f"a process of the run ended with exit status {code} (its output is "
            f"above), so all of them stopped; the run folder '{folder}' is not "
            "finished (no new summary.json): continue it from its last checkpoint with "
            f"--resume {folder} --nproc {nproc}"
        )
    return json.loads(summary_path.read_text())


def _relay_output(process: subprocess.Popen) -> str | None:
    """Echo the processes' output; return the first 'error: ...' line, without its prefix.

    Every process hits the same user error, and the launcher then reports its failure at
    length: the error is kept to be raised once, and what follows it is not echoed.
    """
    error = None
    assert process.stdout is not None
    for line in process.stdout:
        if error is not None:
            continue
        if line.startswith("error: "):
            error = line[len("error: ") :].rstrip("\n")
            continue
        click.echo(line, nl=False)
    return error


def processes_for(resume: str | None, nproc: int | None) -> tuple[int, str]:
    """--nproc, else the number a resumed run was trained with, else 1; and a note to show when
    a resumed run continues in another number of processes ("" otherwise)."""
    if resume is None:
        return nproc or 1, ""
    from gx.checkpoint import load_checkpoint

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
) -> dict[str, Any]:
    """gx run --nproc N: check what can be checked here, then start N ranks through the
    backend's launcher, each a plain ``gx run`` of the same experiment and run folder; returns
    the run's summary.json."""
    from gx.backends import default_backend
    from gx.distributed import World
    from gx.train.run import choose_folder

    backend = options.backend or default_backend()
    World(size=nproc).check_batch(loaded.train.batch_size)
    check_launcher(backend, nproc, options.device)
    resume = options.resume
    folder = Path(resume) if resume else choose_folder(loaded, replace(options, backend=backend))
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
    return launch(backend, nproc, arguments, folder)
