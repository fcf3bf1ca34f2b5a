"""``gx run``: an experiment from data to run folder, resumable, on any backend.

A run folder holds the resolved config, metrics.jsonl (one JSON line per step), sample grids
from fixed noise, their GIF, a loss plot, a checkpoint and summary.json.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from gx.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gx.config import Experiment
from gx.data import batches, resolve_data_root, steps_per_epoch
from gx.distributed import World, current_world
from gx.errors import GxError
from gx.losses import label_classes
from gx.models import GanModel, middle_codes, model_for
from gx.precision import precision_note
from gx.train.data import training_data
from gx.train.gan import STREAM_SAMPLES, GanTrainer, NonFiniteLoss
from gx.train.segments import Segment, Segments, recorded_segments
from gx.train.tensorboard import TensorBoardLog, require_tensorboard

# Settings that only say how long to train and what to write along the way: a resumed run may
# change them. Anything else would make the continued run a different training.
RESUME_MAY_CHANGE = frozenset(
    {
        "train.epochs",
        "train.max_steps",
        "train.sample_every",
        "train.checkpoint_every",
        "train.eval_at_end",
        "train.tensorboard",
        "data.root",
        "data.download",
        # checkpoints are float32 whatever the precision: a run may continue in another one
        "train.precision",
    }
)
# Settings added after some run folders were written: a saved config without one had this value.
ADDED_SETTINGS = {
    "train.sync_batch_norm": True,
    "data.channels": None,
    "train.ema_decay": None,
    "train.ema_start": 0,
    "train.class_loss": 0.0,
    "optimizer.schedule.warmup_steps": 0,
    "optimizer.schedule.decay": "none",
    "optimizer.schedule.decay_start": 0,
    "optimizer.schedule.decay_steps": None,
    "optimizer.schedule.final_factor": 0.0,
    "train.fake_class": False,
    "train.clip_d": None,
    "train.gradient_penalty": "none",
    "train.penalty_weight": None,
    "train.penalty_power": 6.0,
    "train.began_gamma": 0.75,
    "train.began_lambda_k": 0.001,
    "train.ebgan_margin": 1.0,
    "train.pullaway_weight": 0.0,
    "train.info_categorical": 0.0,
    "train.info_continuous": 0.0,
    "optimizer.generator.alpha": 0.99,
    "optimizer.generator.weight_decay": 0.01,
    "optimizer.discriminator.alpha": 0.99,
    "optimizer.discriminator.weight_decay": 0.01,
    "optimizer.info.kind": "adam",
    "optimizer.info.lr": 0.0002,
    "optimizer.info.betas": [0.5, 0.999],
    "optimizer.info.eps": 1.0e-8,
    "optimizer.info.momentum": 0.0,
    "optimizer.info.alpha": 0.99,
    "optimizer.info.weight_decay": 0.01,
    "train.precision": "float32",
}

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
    """Why the run stopped: finished, interrupted (Ctrl-C) or a non-finite loss."""
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


def choose_folder(experiment: Experiment, options: RunOptions) -> Path:
    """The new run's folder (not created): --out when it is free, else a fresh name in runs/."""
    if options.out is not None:
        folder = Path(options.out)
        if folder.exists() and any(folder.iterdir()):
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
    saved_config = folder / "config.yaml"
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
    """Drop lines written after the checkpoint, so a resumed run appends where it left off."""
    if not path.exists():
        return
    lines = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in lines))


@contextmanager
def _interrupt_flag() -> Iterator[dict[str, bool]]:
    """First Ctrl-C asks the loop to stop after the current step; a second one aborts."""
    flag = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class RunArtifacts:
    """Everything a run writes to its folder, apart from checkpoints."""

    writes = True

    def __init__(self, folder: Path, model: GanModel, tensorboard: bool = False) -> None:
        self.folder, self.model = folder, model
        self.metrics_path = folder / "metrics.jsonl"
        self.tensorboard = TensorBoardLog(folder) if tensorboard else None
        self.run_info: dict[str, Any] = {}

    def write_config(
        self, experiment: Experiment, backend: Backend, options: RunOptions, segments: Segments
    ) -> None:
        (self.folder / "config.yaml").write_text(
            yaml.safe_dump(experiment.to_dict(), sort_keys=False)
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
        (self.folder / "run.json").write_text(json.dumps(self.run_info, indent=1))

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write_step(record)

    def records(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line]

    def save_samples(self, step: int, samples: np.ndarray) -> None:
        grid = images.image_grid(samples, SAMPLE_GRID, SAMPLE_GRID)
        grid.save(self.folder / "samples" / f"step-{step:06d}.png")
        if self.tensorboard is not None:
            self.tensorboard.write_samples(step, np.asarray(grid))

    def finish(self, summary: dict[str, Any]) -> None:
        frames = sorted((self.folder / "samples").glob("step-*.png"))
        if frames:
            images.save_gif(frames, self.folder / "samples.gif")
        records = self.records()
        if records:
            images.plot_losses(records, self.folder / "losses.png")
        (self.folder / "summary.json").write_text(json.dumps(summary, indent=1))
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
        "steps": last.get("step", 0),
        "epoch": last.get("epoch", 0),
        "final": {key: last.get(key) for key in ("d_loss", "g_loss", "d_real", "d_fake")},
        "d_loss_range": value_range("d_loss"),
        "g_loss_range": value_range("g_loss"),
        "images_per_s_median": float(np.median(speeds)) if speeds else None,
    }


def _any_process(flag: bool, backend: Backend, world: World) -> bool:
    """Whether any process raised ``flag``: all of them must stop after the same step."""
    if world.size == 1:
        return flag
    return bool(backend.all_reduce_sum(np.array([float(flag)]))[0] > 0)


def run_experiment(experiment: Experiment, options: RunOptions) -> RunResult:
    """Train ``experiment`` as ``gx run`` does; returns the folder, steps and summary.

    Started by a launcher (torchrun, mpirun: see gx.launch), this process trains its share of
    each global batch together with the others, and only rank 0 writes the run folder.
    """
    options = replace(options, backend=options.backend or default_backend())
    run = _start_run(experiment, options)
    if run.resumed is None:
        # Step 0 on disk: if the first updates already diverge there is still a finite state.
        run.checkpoints.save(run.trainer.get_state())
    start = run.trainer.step_index
    notes = [precision_note(run.backend), run.segments.continuation_note()]
    for note in notes:
        if note and start < run.total and options.on_note is not None and run.world.lead:
            options.on_note(note)
    stopped, message = _train(run, options)
    return _finish_run(run, options, start, stopped, message)


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
    artifacts: RunArtifacts | OtherRankArtifacts
    checkpoints: _Checkpoints
    segments: Segments  # which backend trained which steps
    images: Any  # the whole dataset on the device, once; a step only gathers rows
    labels: Any
    total: int  # the step to stop at
    fixed: dict[str, np.ndarray]  # the sample grids' inputs


class _Checkpoints:
    """Writes the trainer's state to the run folder (rank 0 only); remembers the last step saved."""

    def __init__(
        self,
        run_folder: Path,
        model: GanModel,
        experiment: Experiment,
        backend: Backend,
        per_epoch: int,
        writes: bool,
        saved_step: int,
        segments: Segments,
    ) -> None:
        self.folder, self.model, self.experiment = run_folder / "checkpoint", model, experiment
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


def _start_run(experiment: Experiment, options: RunOptions) -> _Run:
    """Check what can fail early, load the data, and make or reopen the run folder."""
    model = model_for(experiment)
    data, train = experiment.data, experiment.train
    root = resolve_data_root(data.dataset, options.data_root, data.root)
    world = current_world()
    world.check_batch(train.batch_size)
    resumed = load_checkpoint(options.resume) if options.resume else None
    earlier: list[Segment] = []
    if resumed is not None and options.resume:
        _check_resumable(resumed, experiment, model, Path(options.resume))
        earlier = recorded_segments(resumed.state, f"the checkpoint of '{options.resume}'")
    # before the data: fail fast
    backend = get_backend(options.backend, options.device, precision=train.precision)
    if world.size > 1:
        backend.join(world, train.sync_batch_norm)
    if train.tensorboard:
        require_tensorboard()
    images, labels = training_data(data, root, model, label_classes(experiment, model))
    per_epoch = steps_per_epoch(len(images), train.batch_size)
    total = per_epoch * train.epochs
    if train.max_steps is not None:
        total = min(total, train.max_steps)
    trainer = GanTrainer(backend, model, experiment, world)

    if resumed is not None and options.resume:
        folder = Path(options.resume)
        trainer.restore(resumed, f"checkpoint of '{folder}'")
    elif world.lead:
        folder = choose_folder(experiment, options)
        (folder / "samples").mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(options.out or "runs")  # named and written by rank 0 alone
    artifacts: RunArtifacts | OtherRankArtifacts
    if world.lead:
        artifacts = RunArtifacts(folder, model, train.tensorboard)
        if resumed is not None:
            _keep_metrics_until(artifacts.metrics_path, trainer.step_index)
    else:
        artifacts = OtherRankArtifacts(folder, model)
    segments = Segments(
        earlier,
        backend.describe(),
        first_step=trainer.step_index + 1,
        started=datetime.now().isoformat(timespec="seconds"),
    )
    artifacts.write_config(experiment, backend, options, segments)
    checkpoints = _Checkpoints(
        folder,
        model,
        experiment,
        backend,
        per_epoch,
        artifacts.writes,
        trainer.step_index,
        segments,
    )
    return _Run(
        experiment, model, backend, world, root, resumed, trainer, folder, artifacts, checkpoints,
        segments, backend.tensor(images), backend.tensor(labels) if trainer.label_classes else None,
        total, sample_inputs(model, experiment.seed),
    )  # fmt: skip


def _train(run: _Run, options: RunOptions) -> tuple[RunOutcome, str]:
    """The training loop: steps, metrics, sample grids and checkpoints, until the last step, a
    non-finite loss or an interruption; returns how it stopped and why."""
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
    stopped, message = RunOutcome.FINISHED, ""
    with _interrupt_flag() as interrupt:
        for step_batch in batches(
            rows, train.batch_size, run.experiment.seed, trainer.step_index, run.total
        ):
            step, epoch = step_batch.step, step_batch.epoch
            lrs = trainer.set_rates(step, epoch, run.total)
            batch = world.take(step_batch.indices)
            began = time.perf_counter()
            try:
                result = trainer.step(
                    backend.take(run.images, batch),
                    backend.take(run.labels, batch) if run.labels is not None else None,
                )
            except NonFiniteLoss as error:
                stopped, message = RunOutcome.NON_FINITE_LOSS, str(error)
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
            if _any_process(interrupt["stop"] or world.stop_requested(), backend, world):
                stopped = RunOutcome.INTERRUPTED
                message = f"interrupted at step {step + 1}; continue with --resume {run.folder}"
                break
    bar.close()
    return stopped, message


def _finish_run(
    run: _Run, options: RunOptions, start: int, stopped: RunOutcome, message: str
) -> RunResult:
    """The last checkpoint and grid, summary.json, and gx eval when the experiment asks."""
    trainer, artifacts, train = run.trainer, run.artifacts, run.experiment.train
    final_state = trainer.get_state()
    # A finite loss can still give non-finite gradients: weights that are not finite are never
    # saved, the previous checkpoint stays.
    if stopped != RunOutcome.NON_FINITE_LOSS or _all_finite(final_state):
        run.checkpoints.save(final_state)
    if stopped == RunOutcome.NON_FINITE_LOSS:
        message += (
            f"; the checkpoint holds step {run.checkpoints.saved_step}, the last finite state saved"
        )
    if artifacts.writes and (
        trainer.step_index % train.sample_every != 0 or trainer.step_index == start
    ):
        artifacts.save_samples(trainer.step_index, trainer.sample(run.fixed))
    artifacts.record_segments(run.segments.until(trainer.step_index))
    summary = _summary(artifacts.records(), run.experiment, run.backend, stopped, message)
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
