"""``gx run``: an experiment from data to run folder, resumable, on any backend.

A run folder holds the resolved config, metrics.jsonl (one JSON line per step), sample grids
from fixed noise, their GIF, a loss plot, a checkpoint and summary.json (gx.run_folder names
them).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from tqdm import tqdm

from gx import images
from gx.backends import default_backend, get_backend
from gx.backends.base import Backend
from gx.checkpoint import (
    Checkpoint,
    CheckpointNotSaved,
    load_checkpoint,
    save_checkpoint,
    saved_step,
    tidy_checkpoint,
)
from gx.config import Experiment, model_for, older_settings, resume_may_change
from gx.data import batches, resolve_data_root, steps_per_epoch
from gx.distributed import World, current_world
from gx.errors import GxError
from gx.losses import label_classes
from gx.models import GanModel, middle_codes
from gx.outputs import WRITE_ERRORS, check_folder_writable, reason, replace_file
from gx.precision import BF16_CPU_FLAGS, FLOAT32
from gx.run_folder import RunFolder
from gx.run_folder.segments import Segment, Segments
from gx.stopping import STOP_SIGNALS, StopNow, StopRequests, signal_name
from gx.train.data import check_data, training_data
from gx.train.gan import STREAM_SAMPLES, GanTrainer, NonFiniteLoss
from gx.train.tensorboard import TensorBoardLog, require_tensorboard

# What a resumed run may change, and what a saved config without a setting had: gx.config says.
RESUME_MAY_CHANGE = resume_may_change()
ADDED_SETTINGS = older_settings()

SAMPLE_GRID = 10  # samples are a 10x10 grid; conditional models get one row per class


@dataclass
class RunOptions:
    """How to run an experiment: the options of ``gx run`` that are not experiment settings."""

    backend: str | None = None
    """``"torch"`` or ``"jittor"``; None: torch when installed, else jittor."""
    device: str = "auto"
    """``"auto"`` (cuda if available), ``"cpu"`` or ``"cuda"``."""
    data_root: str | None = None
    """Folder with the dataset's files (``--data-root``); None: ``$GX_DATA_ROOT``, the
    experiment's ``data.root``, or gx's cache, downloading what is missing."""
    out: str | None = None
    """Run folder to create, which must not exist or be empty; None:
    ``runs/<experiment>-<backend>-<time>``."""
    resume: str | None = None
    """Run folder to continue from its last checkpoint (``--resume``), on either backend."""
    command: str = ""
    """The command line that started the run, recorded in run.json."""
    progress: bool | None = None
    """Show a progress bar; None: only on a terminal."""
    on_step: Callable[[dict[str, Any]], None] | None = None
    """Called with each step's record (its metrics.jsonl line) right after it is written."""
    on_note: Callable[[str], None] | None = None
    """Called with a line for the user before training starts, e.g. that a resume continues on
    another backend."""


class RunOutcome(str, Enum):
    """How a run ended; the value is what summary.json says."""

    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    NON_FINITE_LOSS = "non-finite loss"


@dataclass
class RunResult:
    """What ``run_experiment`` returns once the run has stopped."""

    folder: Path
    """The run folder: config, metrics, samples, checkpoints, summary.json."""
    steps: int
    """The steps trained in total, earlier segments of a resumed run included."""
    stopped: RunOutcome
    """Why the run stopped: finished, interrupted (Ctrl-C or SIGTERM) or a non-finite loss."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The contents of summary.json: final losses, their ranges, the median images/s."""


def sample_inputs(model: GanModel, seed: int) -> dict[str, np.ndarray]:
    """The fixed noise behind every sample grid of a run (row r of a conditional grid: class r;
    continuous codes at 0)."""
    rng = np.random.default_rng([seed, STREAM_SAMPLES])
    count = SAMPLE_GRID * SAMPLE_GRID
    inputs = {"z": rng.standard_normal((count, *model.noise_shape), dtype=np.float32)}
    if model.conditional:
        rows = np.arange(count) // SAMPLE_GRID
        inputs["label"] = (rows % model.classes).astype(np.int64)
    return {**inputs, **middle_codes(model.generator, count)}


def precision_note(backend: Backend) -> str:
    """The line a run prints on start when its low-precision layers run emulated, and so slower
    than float32 rather than faster; "" where they run natively, and in float32."""
    precision = backend.precision
    if precision == FLOAT32 or backend.native_low_precision():
        return ""
    if backend.name == "jittor":
        # Jittor 1.3's CPU bf16 conversion truncates and its bf16 kernels are far slower than
        # its float32 ones; on CUDA its bf16/fp16 kernels are not yet checked against the rule
        why = "gx computes the rule on Jittor's float32 kernels on every device"
    else:
        capability = backend.describe().get("cpu_capability")
        why = f"this CPU has no {' or '.join(BF16_CPU_FLAGS)}; PyTorch's kernel level {capability}"
    return (
        f"note: {precision} is emulated here ({why}): float32 kernels on values rounded to "
        f"{precision}, the numbers of {precision} kernels, but slower than float32, not faster"
    )


def choose_folder(experiment: Experiment, options: RunOptions) -> Path:
    """The new run's folder (not created): --out when it is free, else a fresh name in runs/."""
    if options.out is not None:
        folder = Path(options.out)
        if folder.exists() and not folder.is_dir():
            raise GxError(
                f"--out '{folder}' is a file, not a folder; name a new folder for the run"
            )
        # gx's launcher makes the folder first, for its processes' logs
        if folder.exists() and any(path.name != RunFolder.LOGS for path in folder.iterdir()):
            raise GxError(
                f"output folder '{folder}' already exists and is not empty; choose "
                "another --out, or continue that run with --resume"
            )
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path("runs") / f"{experiment.name}-{options.backend}-{stamp}"
        suffix = 2
        while folder.exists():
            folder = Path("runs") / f"{experiment.name}-{options.backend}-{stamp}-{suffix}"
            suffix += 1
    check_folder_writable(folder, "run folder")
    return folder


def _check_resumable(
    checkpoint: Checkpoint, experiment: Experiment, model: GanModel, folder: Path
) -> None:
    if "imported_from" in checkpoint.state:  # weights from gx import: no training state to go on
        raise GxError(
            f"'{folder}' holds weights imported from {checkpoint.state['imported_from']}, not a "
            "training run to continue. Fix: sample them with gx generate, strip, eval or export, "
            f"or train the imported networks from the start: gx run {folder}/experiment.yaml"
        )
    saved_name = checkpoint.state.get("experiment")
    if saved_name != experiment.name:
        raise GxError(
            f"run '{folder}' belongs to experiment '{saved_name}', not "
            f"'{experiment.name}'; resume it with its own experiment file"
        )
    if checkpoint.model.to_dict() != model.to_dict():
        raise GxError(
            f"run '{folder}' was trained with a different model than "
            f"'{experiment.name}' now describes; resume with the experiment file it "
            "was started with"
        )
    saved_config = RunFolder(folder).config
    if saved_config.is_file():
        saved = _flat(yaml.safe_load(saved_config.read_text()))
        now = _flat(experiment.to_dict())
        changed = [
            key
            for key in sorted(saved.keys() | now.keys())
            if key.split(".")[0] != "model"
            and key not in RESUME_MAY_CHANGE
            and saved.get(key, ADDED_SETTINGS.get(key)) != now.get(key)
        ]
        if changed:
            key = changed[0]
            raise GxError(
                f"run '{folder}' was trained with {key}={saved.get(key)!r}, not "
                f"{now.get(key)!r}; a resumed run must keep its settings (only "
                f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change)"
            )


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} for every leaf of nested dicts (lists stay whole)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return flat


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop lines written after the checkpoint, so a resumed run appends where it left off.

    Cut in place: it needs no room on a full disk. A line cut short by a crash is dropped too.
    """
    if not path.exists():
        return
    kept = 0
    with path.open("rb") as stream:
        for line in stream:
            try:
                if not line.endswith(b"\n") or json.loads(line)["step"] > step:
                    break
            except ValueError:
                break
            kept += len(line)
    os.truncate(path, kept)


class RunArtifacts:
    """Everything a run writes to its folder, apart from checkpoints."""

    writes = True

    def __init__(self, folder: Path, model: GanModel, tensorboard: bool = False) -> None:
        self.run, self.model = RunFolder(folder), model
        self.tensorboard = TensorBoardLog(folder) if tensorboard else None
        self.run_info: dict[str, Any] = {}

    def write_config(
        self, experiment: Experiment, backend: Backend, options: RunOptions, segments: Segments
    ) -> None:
        replace_file(
            self.run.config, yaml.safe_dump(experiment.to_dict(), sort_keys=False).encode()
        )
        self.run_info = {
            "backend": backend.describe(),
            "command": options.command,
            "started": segments.started,
        }
        self.record_segments(segments.training())
        if self.tensorboard is not None:
            self.tensorboard.write_experiment(experiment.to_dict())

    def record_segments(self, segments: list[Segment]) -> None:
        """run.json with the run's segments: which backend trained which steps."""
        self.run_info["segments"] = segments
        replace_file(self.run.record, json.dumps(self.run_info, indent=1).encode())

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.run.metrics.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write_step(record)

    def records(self) -> list[dict[str, Any]]:
        if not self.run.metrics.exists():
            return []
        return [json.loads(line) for line in self.run.metrics.read_text().splitlines() if line]

    def save_samples(self, step: int, samples: np.ndarray) -> None:
        grid = images.image_grid(samples, SAMPLE_GRID, SAMPLE_GRID)
        png = io.BytesIO()
        grid.save(png, format="PNG")
        replace_file(self.run.sample_grid(step), png.getvalue())
        if self.tensorboard is not None:
            self.tensorboard.write_samples(step, np.asarray(grid))

    def finish(self, summary: dict[str, Any]) -> None:
        frames = list(self.run.sample_grids().values())
        if frames:
            images.save_gif(frames, self.run.animation)
        records = self.records()
        if records:
            images.plot_losses(records, self.run.losses)
        replace_file(self.run.summary, json.dumps(summary, indent=1).encode())
        if self.tensorboard is not None:
            self.tensorboard.close()


class OtherRankArtifacts(RunArtifacts):
    """What processes other than rank 0 of a distributed run write: nothing."""

    writes = False

    def write_config(
        self, experiment: Experiment, backend: Backend, options: RunOptions, segments: Segments
    ) -> None:
        pass

    def record_segments(self, segments: list[Segment]) -> None:
        pass

    def append_metrics(self, record: dict[str, Any]) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        return []

    def save_samples(self, step: int, samples: np.ndarray) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass


def _all_finite(state: dict[str, Any]) -> bool:
    return all(
        np.isfinite(array).all()
        for part in ("generator", "discriminator", "optimizer_g", "optimizer_d", "optimizer_info")
        for array in (state[part] or {}).values()
    )


def _summary(
    records: list[dict[str, Any]],
    experiment: Experiment,
    backend: Backend,
    stopped: RunOutcome,
    message: str,
    stop_signal: int | None = None,
) -> dict[str, Any]:
    def value_range(key: str) -> list[float] | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return [min(values), max(values)] if values else None

    speeds = [r["images_per_s"] for r in records[1:]] or [r["images_per_s"] for r in records]
    last = records[-1] if records else {}
    return {
        "experiment": experiment.name,
        "backend": backend.describe(),
        "stopped": stopped.value,
        "message": message,
        # the signal that stopped an interrupted run (SIGINT, SIGTERM, SIGUSR1)
        "signal": signal_name(stop_signal) if stop_signal else None,
        "steps": last.get("step", 0),
        "epoch": last.get("epoch", 0),
        "final": {key: last.get(key) for key in ("d_loss", "g_loss", "d_real", "d_fake")},
        "d_loss_range": value_range("d_loss"),
        "g_loss_range": value_range("g_loss"),
        "images_per_s_median": float(np.median(speeds)) if speeds else None,
    }


def _stop_signal(own: int | None, backend: Backend, world: World) -> int | None:
    """The stop signal any process received (or its stop file names): all of them must stop
    after the same step, and say the same."""
    if world.size == 1:
        return own
    votes = np.array([float(own == number) for number in STOP_SIGNALS])
    totals = backend.all_reduce_sum(votes)
    return next((number for number, total in zip(STOP_SIGNALS, totals) if total > 0), None)


def interruption_message(stop_signal: int, step: int, folder: Path) -> str:
    """The line after a run stopped by a signal and saved: how to continue it."""
    if stop_signal == signal.SIGINT:
        return f"interrupted at step {step}; continue with --resume {folder}"
    return f"stopped by {signal_name(stop_signal)} at step {step}; continue with --resume {folder}"


def run_experiment(experiment: Experiment, options: RunOptions) -> RunResult:
    """Train ``experiment`` as ``gx run`` does; returns the folder, steps and summary.

    Ctrl-C, SIGTERM and SIGUSR1 stop the run after the current step with a checkpoint (see
    gx.stopping). A write that fails (a full disk) stops it with a ``GxError`` that says which
    step the checkpoint holds; the folder is left as a resume expects it.

    Started by a launcher (torchrun, mpirun: see gx.launch), this process trains its share of
    each global batch together with the others, and only rank 0 writes the run folder.
    """
    options = replace(options, backend=options.backend or default_backend())
    stops = StopRequests(options.on_note if current_world().lead else None)
    with stops.installed():
        run = _start_run(experiment, options)
        try:
            if run.resumed is None:
                # Step 0 on disk: if the first updates already diverge there is still a finite
                # state.
                run.checkpoints.save(run.trainer.get_state())
            start = run.trainer.step_index
            notes = [precision_note(run.backend), run.segments.continuation_note()]
            for note in notes:
                if note and start < run.total and options.on_note is not None and run.world.lead:
                    options.on_note(note)
            stopped, message, stop_signal = _train(run, options, stops)
            return _finish_run(run, options, start, stopped, message, stop_signal)
        except StopNow as now:
            return _stopped_at_once(run, now.number)
        except (CheckpointNotSaved, *WRITE_ERRORS) as error:
            stops.ending = True
            raise _write_failed(run, error) from None


@dataclass
class _Run:
    """Everything a run holds while it trains."""

    experiment: Experiment
    model: GanModel
    backend: Backend
    world: World
    root: Path  # the dataset's folder
    resumed: Checkpoint | None
    trainer: GanTrainer
    folder: Path
    created: bool  # whether this run made its folder (a failed first save removes it)
    # A resumed run's records as it found them: put back when it fails before saving a step.
    records_before: dict[Path, bytes]
    artifacts: RunArtifacts | OtherRankArtifacts
    checkpoints: _Checkpoints
    segments: Segments  # which backend trained which steps
    images: Any  # the whole dataset on the device, once; a step only gathers rows
    labels: Any
    total: int  # the step to stop at
    fixed: dict[str, np.ndarray]  # the sample grids' inputs


class _Checkpoints:
    """Writes the trainer's state to the run folder (rank 0 only); remembers the last step saved
    (None until the folder holds a checkpoint)."""

    def __init__(
        self,
        *,
        run_folder: RunFolder,
        model: GanModel,
        experiment: Experiment,
        backend: Backend,
        per_epoch: int,
        writes: bool,
        saved_step: int | None,
        segments: Segments,
    ) -> None:
        self.folder, self.model, self.experiment = run_folder.checkpoint, model, experiment
        self.backend, self.per_epoch, self.writes = backend, per_epoch, writes
        self.saved_step = saved_step  # a resumed run's folder already holds this checkpoint
        self.segments = segments

    def save(self, state: dict[str, Any]) -> None:
        if not self.writes:
            return
        meta = {
            "step": state["step"],
            "epoch": state["step"] // self.per_epoch,
            "rng": state["rng"],
            "experiment": self.experiment.name,
            "backend": self.backend.describe(),
            "segments": self.segments.until(state["step"]),
            # fp16's loss scales (gx.train.loss_scale); absent in float32 and bf16
            **({"loss_scale": state["loss_scale"]} if "loss_scale" in state else {}),
        }
        if state["loss_state"]:
            meta["loss_state"] = state["loss_state"]
        save_checkpoint(
            self.folder,
            Checkpoint(
                self.model,
                state["generator"],
                state["discriminator"],
                state["optimizer_g"],
                state["optimizer_d"],
                meta,
                state["generator_ema"],
                state["optimizer_info"],
            ),
        )
        self.saved_step = state["step"]


@dataclass
class _Prepared:
    """What a run needs that no framework computes: checked before one is imported."""

    model: GanModel
    root: Path
    resumed: Checkpoint | None
    earlier: list[Segment]
    folder: Path | None  # None on ranks other than 0 of a new run: rank 0 names it


def prepare_run(experiment: Experiment, options: RunOptions, world: World) -> _Prepared:
    """Check everything a run needs before a framework is imported: the model, the batch's
    split over the processes, the checkpoint to resume and its settings, the data (downloaded
    when missing) and a run folder that can be written."""
    model = model_for(experiment)
    data, train = experiment.data, experiment.train
    root = resolve_data_root(data.dataset, options.data_root, data.root)
    world.check_batch(train.batch_size)
    resumed = load_checkpoint(options.resume) if options.resume else None
    earlier: list[Segment] = []
    if resumed is not None and options.resume:
        _check_resumable(resumed, experiment, model, Path(options.resume))
        earlier = RunFolder(options.resume).segments(resumed)
    if train.tensorboard:
        require_tensorboard()
    check_data(data, root, model, label_classes(experiment, model))
    folder = None
    if options.resume:
        folder = Path(options.resume)
        check_folder_writable(folder, "run folder")
    elif world.lead:
        folder = choose_folder(experiment, options)
    return _Prepared(model, root, resumed, earlier, folder)


def _start_run(experiment: Experiment, options: RunOptions) -> _Run:
    """Check what can fail early, load the data, and make or reopen the run folder."""
    world = current_world()
    prepared = prepare_run(experiment, options, world)
    model, root, resumed, train = prepared.model, prepared.root, prepared.resumed, experiment.train
    images, labels = training_data(experiment.data, root, model, label_classes(experiment, model))
    backend = get_backend(options.backend, options.device, precision=train.precision)
    if world.size > 1:
        backend.join(world, train.sync_batch_norm)
    per_epoch = steps_per_epoch(len(images), train.batch_size)
    total = per_epoch * train.epochs
    if train.max_steps is not None:
        total = min(total, train.max_steps)
    trainer = GanTrainer(backend, model, experiment, world)
    if resumed is not None:
        trainer.restore(resumed, f"checkpoint of '{prepared.folder}'")
    folder = prepared.folder or Path(options.out or "runs")  # ranks > 0: named by rank 0
    created = world.lead and resumed is None and not folder.exists()
    records_before = {
        path: path.read_bytes()
        for path in (RunFolder(folder).config, RunFolder(folder).record)
        if resumed is not None and world.lead and path.is_file()
    }
    segments = Segments(
        prepared.earlier,
        backend.describe(),
        first_step=trainer.step_index + 1,
        started=datetime.now().isoformat(timespec="seconds"),
    )
    artifacts: RunArtifacts | OtherRankArtifacts
    if world.lead:
        artifacts = RunArtifacts(folder, model, train.tensorboard)
        try:
            artifacts.run.samples.mkdir(parents=True, exist_ok=True)
            if resumed is not None:
                _keep_metrics_until(artifacts.run.metrics, trainer.step_index)
            artifacts.write_config(experiment, backend, options, segments)
        except WRITE_ERRORS as error:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            _put_back(records_before)
            raise GxError(
                f"cannot write run folder '{folder}' ({reason(error)}); free some space there "
                "or choose a place you can write to, then run again"
            ) from None
    else:
        artifacts = OtherRankArtifacts(folder, model)
    checkpoints = _Checkpoints(
        run_folder=RunFolder(folder),
        model=model,
        experiment=experiment,
        backend=backend,
        per_epoch=per_epoch,
        writes=artifacts.writes,
        saved_step=trainer.step_index if resumed is not None else None,
        segments=segments,
    )
    return _Run(
        experiment=experiment,
        model=model,
        backend=backend,
        world=world,
        root=root,
        resumed=resumed,
        trainer=trainer,
        folder=folder,
        created=created,
        records_before=records_before,
        artifacts=artifacts,
        checkpoints=checkpoints,
        segments=segments,
        images=backend.tensor(images),
        labels=backend.tensor(labels) if trainer.label_classes else None,
        total=total,
        fixed=sample_inputs(model, experiment.seed),
    )


def _train(
    run: _Run, options: RunOptions, stops: StopRequests
) -> tuple[RunOutcome, str, int | None]:
    """The training loop: steps, metrics, sample grids and checkpoints, until the last step, a
    non-finite loss or a stop signal; returns how it stopped, why, and the signal."""
    train, trainer, world, backend = run.experiment.train, run.trainer, run.world, run.backend
    # tqdm's disable=None shows the bar only on a terminal
    bar = tqdm(
        total=run.total,
        initial=trainer.step_index,
        unit="step",
        dynamic_ncols=True,
        disable=None if options.progress is None else not options.progress,
    )
    rows = len(run.images)
    stopped, message, stop_signal = RunOutcome.FINISHED, "", None
    for step_batch in batches(
        rows, train.batch_size, run.experiment.seed, trainer.step_index, run.total
    ):
        step, epoch = step_batch.step, step_batch.epoch
        stop_signal = _stop_signal(stops.requested or world.stop_requested(), backend, world)
        if stop_signal is not None:
            stopped = RunOutcome.INTERRUPTED
            message = interruption_message(stop_signal, step, run.folder)
            break
        lrs = trainer.set_rates(step, epoch, run.total)
        batch = world.take(step_batch.indices)
        began = time.perf_counter()
        try:
            result = trainer.step(
                backend.take(run.images, batch),
                backend.take(run.labels, batch) if run.labels is not None else None,
            )
        except NonFiniteLoss as error:
            stopped, message = RunOutcome.NON_FINITE_LOSS, _non_finite_message(run, step, error)
            break
        seconds = time.perf_counter() - began
        record = {
            "step": step + 1,
            "epoch": epoch,
            "d_loss": result.d_loss,
            "g_loss": result.g_loss,
            "d_real": result.d_real,
            "d_fake": result.d_fake,
            "lr_g": lrs[0],
            "lr_d": lrs[1],
            "images_per_s": train.batch_size / seconds,
        }
        if result.info_loss is not None:  # a run that trains InfoGAN's information loss
            record["info_loss"] = result.info_loss
        run.artifacts.append_metrics(record)
        if options.on_step is not None:
            options.on_step(record)
        bar.update(1)
        bar.set_postfix(
            epoch=epoch,
            d=f"{result.d_loss:.3f}",
            g="-" if result.g_loss is None else f"{result.g_loss:.3f}",
            ips=f"{record['images_per_s']:.0f}",
        )
        if (step + 1) % train.sample_every == 0 and run.artifacts.writes:
            run.artifacts.save_samples(step + 1, trainer.sample(run.fixed))
        if (step + 1) % train.checkpoint_every == 0:
            run.checkpoints.save(trainer.get_state())
    bar.close()
    return stopped, message, stop_signal


def _non_finite_message(run: _Run, step: int, error: NonFiniteLoss) -> str:
    """Why the run stopped at a non-finite loss; at the first step after resuming from
    non-finite weights (loaded with GX_ALLOW_NONFINITE), the damaged checkpoint."""
    resumed = run.resumed
    if resumed is None or not resumed.non_finite or step != resumed.state["step"]:
        return str(error)
    return (
        f"the loss became non-finite at step {step + 1}, the first step after resuming from "
        f"'{run.folder}', whose checkpoint holds weights that are not finite "
        f"({resumed.non_finite}): the checkpoint is damaged; resume from an intact copy of the "
        "run folder"
    )


def _finish_run(
    run: _Run,
    options: RunOptions,
    start: int,
    stopped: RunOutcome,
    message: str,
    stop_signal: int | None,
) -> RunResult:
    """The last checkpoint and grid, summary.json, and gx eval when the experiment asks."""
    trainer, artifacts, train = run.trainer, run.artifacts, run.experiment.train
    final_state = trainer.get_state()
    # A finite loss can still give non-finite gradients: weights that are not finite are never
    # saved, the previous checkpoint stays.
    if stopped != RunOutcome.NON_FINITE_LOSS or _all_finite(final_state):
        run.checkpoints.save(final_state)
    if stopped == RunOutcome.NON_FINITE_LOSS and not (run.resumed and run.resumed.non_finite):
        message += (
            f"; the checkpoint holds step {run.checkpoints.saved_step}, the last finite state saved"
        )
    if artifacts.writes and (
        trainer.step_index % train.sample_every != 0 or trainer.step_index == start
    ):
        artifacts.save_samples(trainer.step_index, trainer.sample(run.fixed))
    artifacts.record_segments(run.segments.until(trainer.step_index))
    summary = _summary(
        artifacts.records(), run.experiment, run.backend, stopped, message, stop_signal
    )
    if train.eval_at_end and stopped == RunOutcome.FINISHED and artifacts.writes:
        from gx.evaluate import evaluate_run

        summary["eval"] = evaluate_run(
            run.folder,
            backend_name=options.backend,
            device=options.device,
            seed=run.experiment.seed,
            data_root=run.root,
        )
    artifacts.finish(summary)
    return RunResult(run.folder, trainer.step_index, stopped, summary)


def _stopped_at_once(run: _Run, stop_signal: int) -> RunResult:
    """A third stop signal: end without finishing the step or save in flight. The folder is left
    as a resume expects it: the last complete checkpoint, the metrics and segments up to it."""
    saved = _tidy_to_checkpoint(run)
    if saved is None:
        message = f"stopped by {signal_name(stop_signal)} before the first checkpoint was saved"
    else:
        message = (
            f"stopped at once by {signal_name(stop_signal)}: the checkpoint holds step {saved} "
            f"(the steps after it were not saved); continue with --resume {run.folder}"
        )
    records = run.artifacts.records()
    summary = _summary(
        records, run.experiment, run.backend, RunOutcome.INTERRUPTED, message, stop_signal
    )
    return RunResult(run.folder, saved or 0, RunOutcome.INTERRUPTED, summary)


def _write_failed(run: _Run, error: BaseException) -> GxError:
    """The error after a write to the run folder failed: the folder tidied as a resume expects
    it (or removed when no checkpoint was ever saved), and what to do."""
    why = error.reason if isinstance(error, CheckpointNotSaved) else reason(error)
    saved = _tidy_to_checkpoint(run)
    fix = "free some space" if "space" in why or "quota" in why else "make it writable"
    if saved is None:
        return GxError(
            f"cannot write run folder '{run.folder}' ({why}), so the run stopped before its "
            f"first checkpoint and kept nothing; {fix}, then start it again"
        )
    return GxError(
        f"cannot write run folder '{run.folder}' ({why}), so the run stopped at step "
        f"{run.trainer.step_index}; its checkpoint holds step {saved}: {fix}, then continue "
        f"with --resume {run.folder}"
    )


def _tidy_to_checkpoint(run: _Run) -> int | None:
    """Leave the run folder as a resume expects it: no unfinished checkpoint, and the metrics,
    sample grids and segments of the steps the checkpoint holds; returns its step. What a new
    run wrote before its first checkpoint is removed: there is nothing in it to resume."""
    if not run.artifacts.writes:
        return run.checkpoints.saved_step
    tidy_checkpoint(run.checkpoints.folder)
    try:
        saved: int | None = saved_step(run.folder)
    except GxError:
        saved = None
    if saved is None:
        if run.created:
            shutil.rmtree(run.folder, ignore_errors=True)
        elif run.resumed is None:  # an empty --out folder (or one of launch logs): so again
            for path in run.folder.iterdir():
                if path.name != RunFolder.LOGS:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        return None
    _keep_metrics_until(run.artifacts.run.metrics, saved)
    for step, grid in run.artifacts.run.sample_grids().items():
        if step > saved:
            grid.unlink()
    if run.resumed is not None and saved == run.resumed.state["step"]:
        _put_back(run.records_before)  # nothing new was saved
        return saved
    try:
        run.artifacts.record_segments(run.segments.until(saved))
    except OSError:
        pass  # run.json keeps its last segment open; the checkpoint holds the true segments
    return saved


def _put_back(records: dict[Path, bytes]) -> None:
    """Restore files as they were (best effort: the disk may still be full)."""
    for path, data in records.items():
        try:
            replace_file(path, data)
        except OSError:
            pass
