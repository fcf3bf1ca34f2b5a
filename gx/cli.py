"""The ``gx`` command line. Thin on purpose: parse, call the library, print.

Every user mistake surfaces as one ``error: ...`` line and exit status 2; importing this module
(and ``--help``) imports no framework.
"""

from __future__ import annotations

import errno
import faulthandler
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from gx.backends import BACKENDS, DEVICES
from gx.data.registry import DATASET_NAMES
from gx.errors import GxError
from gx.outputs import check_folder_writable
from gx.precision import PRECISIONS
from gx.stopping import StopNow, exit_status, signal_name, stop_signals_end_the_command
from gx.waiting import watch_lock_waits

EXIT_USER_ERROR = 2
F = TypeVar("F", bound=Callable[..., Any])
# What the machine, not gx, can make fail: a full disk, a read-only place, missing permission.
_ENVIRONMENT_ERRORS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
     errno.EISDIR}
)  # fmt: skip


class OneLineError(click.ClickException):
    """What gx prints for every error: one ``error: ...`` line, exit status 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _usage_line(error: click.UsageError) -> OneLineError:
    """click's own usage error (a value out of range, a file where a folder is needed, ...) as
    gx's one line, pointing at the command's help."""
    words: list[str] = []
    context = error.ctx
    while context is not None and context.parent is not None:  # the root is gx, however started
        words.insert(0, context.info_name or "")
        context = context.parent
    command = " ".join(["gx", *words])
    return OneLineError(f"{error.format_message().rstrip('.')} (see '{command} --help')")


def _stopped_early(number: int) -> str:
    return (
        f"stopped by {signal_name(number)} before the command finished; no file was left "
        "half-written: run it again"
    )


class GxGroup(click.Group):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise _usage_line(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        watch_lock_waits(lambda line: click.echo(line, err=True))
        try:
            with stop_signals_end_the_command():
                return super().invoke(ctx)
        except GxError as error:
            raise OneLineError(str(error)) from None
        except click.UsageError as error:
            raise _usage_line(error) from None
        except (KeyboardInterrupt, StopNow) as stop:
            number = stop.number if isinstance(stop, StopNow) else signal.SIGINT
            told = stop.message if isinstance(stop, StopNow) else ""
            click.echo(f"error: {told or _stopped_early(number)}", err=True)
            ctx.exit(exit_status(number))
        except OSError as error:
            if error.errno not in _ENVIRONMENT_ERRORS:
                raise
            where = f"'{error.filename}' " if error.filename else ""
            raise OneLineError(
                f"cannot write {where}({error.strerror}); free some space or choose a place "
                "you can write to"
            ) from None


# Options several commands share, declared once. A backend left out is chosen by what is
# installed (gx.backends.default_backend / checkpoint_backend).
experiment_argument = click.argument("experiment", type=click.Path(dir_okay=False))
overrides_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override an experiment setting, e.g. train.epochs=5 (repeatable).",
)
# gx.data.resolve_data_root decides where the files are when this is not given
data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder with the dataset's files, or the image folder (else $GX_DATA_ROOT, the "
    "experiment's data.root, or ~/.cache/gx/data/<dataset>; missing files are downloaded).",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Train in this precision: the same as --set train.precision=P (bf16 on CPUs and "
    "GPUs, fp16 on GPUs only; default: the experiment's).",
)


def with_precision(overrides: tuple[str, ...], precision: str | None) -> list[str]:
    """The --set overrides with --precision's added last, so that it decides."""
    return list(overrides) + ([f"train.precision={precision}"] if precision else [])


device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="cuda if available (auto), or force one.",
)
train_backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Framework to use (default: torch when installed, else jittor).",
)
checkpoint_backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Framework to sample with (default: the one that trained the checkpoint when installed, "
    "else the installed one).",
)


def backend_option(help_text: str) -> Callable[[F], F]:
    """--backend, for a command that uses it in its own way."""
    return click.option("--backend", type=click.Choice(BACKENDS), default=None, help=help_text)


def whole_option(
    name: str,
    help_text: str,
    default: int | None = None,
    minimum: int = 1,
    maximum: int | None = None,
    dest: str | None = None,
) -> Callable[[F], F]:
    """A whole-number option with its range, and its default shown when it has one."""
    names = [name] if dest is None else [name, dest]
    return click.option(
        *names,
        type=click.IntRange(min=minimum, max=maximum),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def seed_option(help_text: str) -> Callable[[F], F]:
    return click.option("--seed", type=int, default=0, show_default=True, help=help_text)


def checkpoint_option(help_text: str) -> Callable[[F], F]:
    return click.option("--checkpoint", required=True, type=click.Path(), help=help_text)


def out_option(help_text: str, **settings: Any) -> Callable[[F], F]:
    """--out, with what the command writes there (a file, a folder) in ``settings``."""
    return click.option("--out", help=help_text, **settings)


@click.group(cls=GxGroup)
@click.version_option(package_name="gx")
def main() -> None:
    """gx: write a GAN once, train it on PyTorch or Jittor, and prove both give the same numbers."""


def entry_point() -> None:
    """The installed ``gx`` command: ``main`` with faulthandler on, so that a crash in a
    framework's native code ends gx with every thread's stack printed, never silently."""
    faulthandler.enable()
    main()


@main.command()
@experiment_argument
@backend_option(
    "Also compile the networks in this backend and check its real output shapes against the spec's."
)
@device_option
@overrides_option
def summary(experiment: str, backend: str | None, device: str, overrides: tuple[str, ...]) -> None:
    """Layer table (name, kind, output shape, parameters) of an experiment's networks."""
    from gx.backends import get_backend
    from gx.config import load_experiment, model_for
    from gx.tools.summary import summarize

    model = model_for(load_experiment(experiment, overrides))
    text, mismatches = summarize(model, get_backend(backend, device) if backend else None)
    click.echo(text)
    if mismatches:
        click.echo(f"{mismatches} layer(s) differ from the spec", err=True)
        sys.exit(1)


@main.command()
@experiment_argument
@click.option(
    "--net",
    default="generator",
    show_default=True,
    help="Network to draw: generator, discriminator or both.",
)
@out_option(
    "model.svg, model.png or model.dot (default: <experiment>-<net>.svg).", type=click.Path()
)
@overrides_option
def graph(experiment: str, net: str, out: str | None, overrides: tuple[str, ...]) -> None:
    """Draw an experiment's network as a graph: inputs, layers (kind, output shape, parameters),
    branches and the concat where they join. Drawn from the spec; no framework is imported.

    Graphviz's dot renders .svg and .png; without it the .dot file is written, with the command
    that renders it.
    """
    from gx.config import load_experiment, model_for
    from gx.tools.drawing import INSTALL_HINT, check_net, write_graph

    check_net(net)
    loaded = load_experiment(experiment, overrides)
    written = write_graph(model_for(loaded), net, out or f"{loaded.name}-{net}.svg")
    click.echo(f"wrote {written.path}")
    if written.render_command:
        click.echo(
            f"graphviz's dot is not installed ({INSTALL_HINT}); render the picture "
            f"with: {written.render_command}",
            err=True,
        )


@main.command()
@experiment_argument
@train_backend_option
@device_option
@overrides_option
@data_root_option
@out_option(
    "Run folder to create (default runs/<experiment>-<backend>-<time>); must not exist or be "
    "empty.",
    type=click.Path(file_okay=False),
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False),
    default=None,
    help="Continue the run in this folder from its last checkpoint.",
)
@whole_option(
    "--max-steps", "Stop after this many steps in total (same as --set train.max_steps=N)."
)
@whole_option(
    "--nproc",
    "Train in N processes (torch: torchrun, gloo on CPU / NCCL on GPUs; jittor: OpenMPI's "
    "mpirun), each on a 1/N slice of the global train.batch_size. Default 1; a resumed run "
    "keeps the number it was trained with.",
)
def run(
    experiment: str,
    backend: str | None,
    device: str,
    overrides: tuple[str, ...],
    data_root: str | None,
    out: str | None,
    resume: str | None,
    max_steps: int | None,
    nproc: int | None,
) -> None:
    """Train an experiment; writes metrics, samples, a GIF, a loss plot and checkpoints.

    Ctrl-C, SIGTERM and SIGUSR1 stop after the current step and save a checkpoint (exit status
    130, 143, 138); --resume continues it exactly.
    """
    from gx import launch
    from gx.train.run import RunOptions

    settings = list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps else [])
    options = RunOptions(
        backend=backend,
        device=device,
        data_root=data_root,
        out=out,
        resume=resume,
        command=" ".join(sys.argv),
        on_note=lambda line: click.echo(line, err=True),
    )
    ran = launch.run(experiment, settings, options, nproc)
    if ran is not None:
        _report_run(ran.folder, ran.steps, ran.summary, ran.sets_status)


def _report_run(folder: Path, steps: int, summary_data: dict[str, Any], set_status: bool) -> None:
    """The run's closing lines, and why it stopped early; with ``set_status``, exit 1 after a
    non-finite loss and 128 + N after a stop by signal N (130 for Ctrl-C)."""
    from gx.train.run import RunOutcome

    final = summary_data["final"]
    click.echo(f"run folder: {folder}")
    # None when no step ran (epochs: 0) or G did not train on the last step (d_steps > 1)
    losses = {
        key: "-" if final[key] is None else f"{final[key]:.4f}" for key in ("d_loss", "g_loss")
    }
    click.echo(
        f"steps: {steps}  d_loss: {losses['d_loss']}  g_loss: {losses['g_loss']}  "
        f"images/s: {summary_data['images_per_s_median'] or 0:.0f}"
    )
    if summary_data["stopped"] == RunOutcome.NON_FINITE_LOSS:
        click.echo(f"error: {summary_data['message']}", err=True)
        if set_status:
            sys.exit(1)
    if summary_data["stopped"] == RunOutcome.INTERRUPTED:
        click.echo(summary_data["message"], err=True)
        if set_status:
            # summary.json names the signal; Ctrl-C when it does not
            name = summary_data.get("signal")
            sys.exit(exit_status(getattr(signal, name) if name else signal.SIGINT))


@main.command()
@experiment_argument
@whole_option("--steps", "Training steps to run in lockstep.", default=60)
@click.option(
    "--device",
    type=click.Choice(("cpu", "cuda")),
    default="cpu",
    show_default=True,
    help="Device for all three trainings (on CUDA, TF32 and nondeterministic "
    "kernels are switched off).",
)
@overrides_option
@data_root_option
@out_option(
    "Report folder (default reports/<experiment>-parity).", type=click.Path(file_okay=False)
)
@whole_option("--every", "Print every N-th step of the loss table.", default=5)
@whole_option(
    "--seeds",
    "Lockstep trainings from this many seeds (the experiment's, then the next ones); parity "
    "holds when most of them are within the floor.",
    default=3,
)
@precision_option
def parity(
    experiment: str,
    steps: int,
    device: str,
    overrides: tuple[str, ...],
    data_root: str | None,
    out: str | None,
    every: int,
    seeds: int,
    precision: str | None,
) -> None:
    """Train in PyTorch and Jittor in lockstep and compare with the rounding floor.

    The floor is the precision's own: how far equally valid roundings of PyTorch itself drift
    apart (float32 by default; with --precision bf16, bf16's, with PyTorch float32 trained
    beside as the far reference). Exit status 0 when the backends stay within the floor, 1
    when they leave it.
    """
    from gx.config import load_experiment
    from gx.parity import (
        ParityIncomplete,
        layer_table,
        loss_table,
        run_parity,
        seed_table,
        shapes_agree,
        write_report,
    )

    loaded = load_experiment(experiment, with_precision(overrides, precision))
    report_folder = out or f"reports/{loaded.name}-parity"
    check_folder_writable(Path(report_folder), "report folder")
    try:
        result = run_parity(loaded, steps, device, data_root, seeds)
    except ParityIncomplete as error:
        folder = write_report(error.result, report_folder, incomplete=str(error))
        raise GxError(
            f"{error}; no verdict. The figures of the runs that finished are in "
            f"{folder / 'parity.json'}"
        ) from None
    folder = write_report(result, report_folder)
    click.echo(layer_table(result))
    click.echo()
    click.echo(f"seed {loaded.seed}:")
    click.echo(loss_table(result, every))
    click.echo()
    click.echo(seed_table(result))
    click.echo()
    if result.stopped_early:
        click.echo(f"stopped early: {result.stopped_early}")
    click.echo(f"report: {folder / 'parity.json'}, {folder / 'parity.png'}")
    click.echo(result.verdict_line())
    if not (result.within and shapes_agree(result)):
        sys.exit(1)


@main.command(name="import")
@click.argument("target", metavar="FILE.py:NAME")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=DECLARATION",
    help="One per argument of forward, in its order: NAME=100 or NAME=1x28x28 (a float "
    "tensor), NAME=class:10 (integer labels), NAME=onehot:10 or NAME=onehot:10x28x28 (the "
    "labels' one-hot code, as forward receives it). A GAN's names are z, label and image.",
)
@click.option(
    "--args",
    "arguments",
    default=None,
    metavar="JSON",
    help="Arguments of NAME's constructor: a JSON object (keywords) or list (positional).",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="The network's saved state_dict (.pt/.pth, read with weights_only=True, or "
    ".safetensors), written beside the spec in gx's checkpoint format.",
)
@out_option(
    "NAME.yaml: one network's spec. A folder: an import folder gathering G and D, with "
    "experiment.yaml and checkpoint/ once both are in.",
    required=True,
    type=click.Path(),
)
def import_(
    target: str, inputs: tuple[str, ...], arguments: str | None, weights: str | None, out: str
) -> None:
    """Import a hand-written PyTorch network as a gx spec.

    PyTorch's tracer (torch.fx) records forward; every operation becomes the gx layer that
    computes the same, named after its attribute path (main.0 -> main_0), and the spec is
    checked against the module's own output before anything is written. What gx cannot
    express is one error naming the operation, its module and its source line.
    """
    from gx.importer.command import import_file

    with warnings.catch_warnings():
        # torch.load(weights_only=True) warns about a pickle's protocol before it refuses the
        # file; the refusal is the one line the user needs.
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        result = import_file(target, inputs, out, weights, arguments)
    network = result.network
    click.echo(
        f"imported {network.name}: {len(network.spec.nodes)} layers, "
        f"{network.spec.parameter_count:,} parameters"
    )
    if network.spec.parameter_count != network.module_parameters:
        click.echo(
            f"the module holds {network.module_parameters:,} parameters; forward does not use "
            "the others",
            err=True,
        )
    for note in result.notes:
        click.echo(note)
    for path in result.written:
        click.echo(f"wrote {path}")


@main.command()
@checkpoint_option("A run folder made by gx run (or its checkpoint folder).")
@checkpoint_backend_option
@device_option
@click.option(
    "--labels",
    default=None,
    help="Classes to draw, e.g. 3,1,4 (conditional models; default 0..classes-1).",
)
@whole_option("--count", "Number of images for unconditional models (default 16).")
@click.option(
    "--noise",
    "noise_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A .npy of noise vectors, shape (N, *noise_shape): the same file gives the "
    "same images on every machine and backend.",
)
@seed_option("Seed of the noise when --noise is not given.")
@out_option("out.png (a grid) or out.npy (float images).", required=True)
def generate(
    checkpoint: str,
    backend: str | None,
    device: str,
    labels: str | None,
    count: int | None,
    noise_path: str | None,
    seed: int,
    out: str,
) -> None:
    """Sample images from a trained generator."""
    from gx.tools.generate import sample_to_file

    result = sample_to_file(checkpoint, backend, device, out, labels, count, noise_path, seed)
    click.echo(f"wrote {len(result)} images to {out}")


@main.command()
@checkpoint_option("A run folder made by gx run (or its checkpoint folder), of either backend.")
@out_option(
    "ONNX file to write.",
    type=click.Path(dir_okay=False),
    default="generator.onnx",
    show_default=True,
)
def export(checkpoint: str, out: str) -> None:
    """Write the generator as ONNX (opset 17, dynamic batch), for onnxruntime or TensorRT.

    Inputs are named as in the spec: z (float32, the noise shape) and, for conditional models,
    label (int64 class indices); the output is image, in [-1, 1]. Needs torch and the onnx extra
    (pip install 'gx[onnx]'). The written file is run with onnxruntime and compared with gx's
    generator; docs/export.md shows how to build a TensorRT engine from it on a Jetson.
    """
    from gx.tools.export import export_generator

    result = export_generator(checkpoint, out)
    inputs = ", ".join(
        f"{name} {kind} {list(shape)}" for name, (kind, shape) in result.inputs.items()
    )
    click.echo(f"wrote {result.path} (ONNX opset {result.opset}); inputs: {inputs}")
    verdict = "agrees" if result.agrees else "OUTSIDE it"
    click.echo(
        f"onnxruntime vs gx on {result.check_batch} images: max abs difference "
        f"{result.max_abs_difference:.2e} (float32's rounding floor {result.floor:.2e}: {verdict})"
    )


@main.command()
@experiment_argument
@train_backend_option
@device_option
@whole_option("--batch", "Batch size (default: the experiment's train.batch_size).")
@whole_option("--steps", "Timed training steps (and generation batches).", default=20)
@whole_option(
    "--warmup",
    "Untimed steps first (on Jittor they also compile the kernels).",
    default=3,
    minimum=0,
)
@click.option(
    "--compile",
    "compile_modules",
    is_flag=True,
    help="torch only: torch.compile the generator and discriminator.",
)
@precision_option
@overrides_option
def bench(
    experiment: str,
    backend: str | None,
    device: str,
    batch: int | None,
    steps: int,
    warmup: int,
    compile_modules: bool,
    precision: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Training and generation speed (images/s) and peak memory, on synthetic data.

    The last line printed is one JSON object with keys: experiment, model, backend, device,
    precision, low_precision_kernels (native or emulated; null in float32), batch, steps, warmup,
    compile, warmup_s, train_images_per_s, train_step_ms_median, step_gflop (the step's
    matrix-product and convolution work, counted from the spec), train_gflop_per_s,
    float32_ceiling_gflop_per_s (a 2048 x 2048 float32 matrix product through PyTorch on the
    same threads; null without PyTorch) and float32_ceiling_share (train_gflop_per_s over it),
    low_precision_ceiling_gflop_per_s and low_precision_ceiling_share (the same in bf16 or
    fp16; null in float32), generate_images_per_s, generate_batch_ms_median,
    peak_host_rss_mb, peak_device_mb (null off CUDA), onednn (Jittor only) and backend_info.
    """
    import json

    from gx.config import load_experiment
    from gx.tools.bench import BenchOptions, format_report, run_bench

    options = BenchOptions(
        backend=backend,
        device=device,
        batch=batch,
        steps=steps,
        warmup=warmup,
        compile=compile_modules,
    )
    result = run_bench(load_experiment(experiment, with_precision(overrides, precision)), options)
    click.echo(format_report(result))
    click.echo(json.dumps(result))


@main.command()
@click.argument("number")
@checkpoint_option("A run folder of a conditional model (cgan, cdcgan) made by gx run.")
@checkpoint_backend_option
@device_option
@seed_option("Seed of the noise: the same seed gives the same strip on every backend.")
@whole_option(
    "--best-of",
    "Draw K candidates per digit and keep the one the evaluation classifier reads most "
    "confidently as the intended digit.",
    default=1,
)
@click.option(
    "--verify",
    is_flag=True,
    help="Print what the classifier reads at each position; exit 1 if any digit is "
    "misread (the strip is saved either way).",
)
@whole_option("--scale", "Enlarge the image N times (nearest neighbour).", default=1, maximum=64)
@out_option(
    "PNG file to write.", type=click.Path(dir_okay=False), default="result.png", show_default=True
)
@data_root_option
def strip(
    number: str,
    checkpoint: str,
    backend: str | None,
    device: str,
    seed: int,
    best_of: int,
    verify: bool,
    scale: int,
    out: str,
    data_root: str | None,
) -> None:
    """Draw NUMBER as one row of generated digits: the competition's phone-number strip.

    NUMBER holds digits 0-9; spaces and dashes are allowed and dropped ("138-0013 8000").
    The image is H tall and H * digits wide (32 x 352 for cgan and 11 digits), min-max
    normalised to 0..255, 8-bit grayscale. The classifier behind --best-of and --verify is
    trained and cached on first use (see gx classifier train).
    """
    from gx.tools.strip import reading_table, save_strip, strip_from_run

    result = strip_from_run(
        number, checkpoint, backend, device, seed, best_of, verify, data_root, out=out
    )
    save_strip(result.pixels, out, scale)
    height, width = result.pixels.shape
    click.echo(f"wrote {out}: {result.digits}, {width * scale}x{height * scale} pixels")
    if verify:
        click.echo(reading_table(result))
        if result.misread:
            click.echo(f"{len(result.misread)} of {len(result.digits)} digits misread", err=True)
            sys.exit(1)


@main.command(name="eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@whole_option(
    "--n",
    "Generated images (and up to as many real test images) to compare.",
    default=10000,
    minimum=2,
    dest="count",
)
@checkpoint_backend_option
@device_option
@seed_option("Seed of the noise.")
@data_root_option
def evaluate(
    run_dir: str, count: int, backend: str | None, device: str, seed: int, data_root: str | None
) -> None:
    """Measure a run's samples; writes RUN_DIR/eval.json and prints a table.

    Agreement: the share of generated digits the evaluation classifier reads as the label asked
    for (conditional models). Fréchet distance between real and generated images in the
    classifier's 128-value feature space (0: same statistics). Diversity: mean pairwise feature
    distance of generated over real images, within classes (about 1 like real data, 0 when
    collapsed).
    """
    from gx.evaluate import evaluate_run, format_table

    click.echo(format_table(evaluate_run(run_dir, count, backend, device, seed, data_root)))


@main.group()
def classifier() -> None:
    """The evaluation classifier behind gx eval and gx strip --best-of/--verify."""


@classifier.command(name="train")
@backend_option(
    "Framework that trains it (the cached weights serve both; default: torch when installed, "
    "else jittor)."
)
@device_option
@data_root_option
@click.option(
    "--dataset",
    default="mnist",
    show_default=True,
    help=f"A dataset gx knows ({', '.join(DATASET_NAMES)}; folder: class folders of images "
    "in --data-root).",
)
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Channels of the images it reads: the generator's (default: the dataset's own; RGB "
    "for a folder).",
)
@whole_option(
    "--image-size",
    "Image size it reads: the generator's (28 for cdcgan, 32 for cgan).",
    default=28,
    minimum=8,
    maximum=256,
)
def classifier_train(
    backend: str | None,
    device: str,
    data_root: str | None,
    dataset: str,
    channels: str | None,
    image_size: int,
) -> None:
    """Train (or retrain) the classifier and report its held-out accuracy.

    With the train split on disk it trains on it and holds out the test split; with only the
    test split it trains on a fixed 8,500 of its images and holds out the other 1,500; from an
    image folder (--dataset folder) on a fixed 85% of its images. Cached as safetensors + JSON
    in <data-root>/classifiers/ (a folder's .gx-cache/classifiers/), or
    ~/.cache/gx/classifiers/ when the data folder is read-only.
    """
    from gx.backends import get_backend
    from gx.data import native_channels, resolve_data_root
    from gx.evaluate import train_classifier

    root = resolve_data_root(dataset, data_root, None)
    trained = train_classifier(
        get_backend(backend, device),
        dataset,
        root,
        image_size,
        channels=int(channels) if channels else native_channels(dataset),
    )
    info = trained.info
    click.echo(f"data: {info['split']}")
    click.echo(f"trained on {info['train_images']} images in {info['train_seconds']:.1f} s")
    click.echo(
        f"held-out accuracy: {100 * info['held_out_accuracy']:.2f}% "
        f"({info['held_out_images']} images)"
    )
    click.echo(f"saved: {info['path']}")
