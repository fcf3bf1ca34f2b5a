"""The ``gx`` command line. Thin on purpose: parse, call the library, print.

Every user mistake surfaces as one ``error: ...`` line and exit status 2; importing this module
(and ``--help``) imports no framework.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gx.backends import BACKENDS, DEVICES
from gx.errors import GxError

EXIT_USER_ERROR = 2


class GxGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GxError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_USER_ERROR)


experiment_argument = click.argument("experiment", type=click.Path(dir_okay=False))
overrides_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                                help="Override an experiment setting, e.g. train.epochs=5 "
                                     "(repeatable).")
device_option = click.option("--device", type=click.Choice(DEVICES), default="auto",
                             show_default=True, help="cuda if available (auto), or force one.")


@click.group(cls=GxGroup)
@click.version_option(package_name="gx")
def main() -> None:
    """gx: write a GAN once, train it on PyTorch or Jittor, and prove both give the same numbers."""


@main.command()
@experiment_argument
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Also compile the networks in this backend and check its real output shapes "
                   "against the spec's.")
@device_option
@overrides_option
def summary(experiment: str, backend: str | None, device: str, overrides: tuple[str, ...]) -> None:
    """Layer table (name, kind, output shape, parameters) of an experiment's networks."""
    from gx.backends import get_backend
    from gx.config import load_experiment
    from gx.summary import summarize
    from gx.train.run import model_for

    model = model_for(load_experiment(experiment, overrides))
    text, mismatches = summarize(model, get_backend(backend, device) if backend else None)
    click.echo(text)
    if mismatches:
        click.echo(f"{mismatches} layer(s) differ from the spec", err=True)
        sys.exit(1)


@main.command()
@experiment_argument
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="Framework that trains the networks.")
@device_option
@overrides_option
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder with the dataset's idx files (else $GX_DATA_ROOT, the experiment's "
                   "data.root, or ~/.cache/gx/data/<dataset>; missing files are downloaded).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder to create (default runs/<experiment>-<backend>-<time>); must not "
                   "exist or be empty.")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many steps in total (same as --set train.max_steps=N).")
def run(experiment: str, backend: str, device: str, overrides: tuple[str, ...],
        data_root: str | None, out: str | None, resume: str | None, max_steps: int | None) -> None:
    """Train an experiment; writes metrics, samples, a GIF, a loss plot and checkpoints.

    Ctrl-C stops after the current step and saves a checkpoint; --resume continues it exactly.
    """
    from gx.config import load_experiment
    from gx.train.run import RunOptions, run_experiment

    if out is not None and resume is not None:
        raise GxError("--out and --resume cannot be combined: a resumed run continues in its own "
                      "folder")
    settings = list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps else [])
    loaded = load_experiment(experiment, settings)
    result = run_experiment(loaded, RunOptions(backend=backend, device=device,
                                               data_root=data_root, out=out, resume=resume,
                                               command=" ".join(sys.argv)))
    summary_data = result.summary
    final = summary_data["final"]
    click.echo(f"run folder: {result.folder}")
    click.echo(f"steps: {result.steps}  d_loss: {final['d_loss']:.4f}  g_loss: "
               f"{final['g_loss'] if final['g_loss'] is None else round(final['g_loss'], 4)}  "
               f"images/s: {summary_data['images_per_s_median'] or 0:.0f}")
    if result.stopped == "non-finite loss":
        click.echo(f"error: {summary_data['message']}; the checkpoint holds the last finite "
                   "state", err=True)
        sys.exit(1)
    if result.stopped == "interrupted":
        click.echo(summary_data["message"], err=True)
        sys.exit(130)
