"""What ``gx import`` writes.

``--out NAME.yaml``: the spec mapping of one network, what goes under ``model.generator`` (or
``model.discriminator``) of a custom model in an experiment file; with ``--weights`` also
``NAME.safetensors``, its weights keyed 'layer.param' as gx checkpoints key them.

``--out FOLDER``: an import folder that gathers a GAN, one network per ``gx import``::

    generator.yaml, discriminator.yaml                 each network's spec (the one with input z
                                                       is the generator, with image the
                                                       discriminator), on images
                                                       (gx.importer.folder_images)
    generator.safetensors, discriminator.safetensors   their weights (with --weights)
    experiment.yaml   a custom-model experiment of both specs, once both are there (settings
                      other than the model are kept when it is rewritten; its loss is bce
                      when D ends in a sigmoid, else mse)
    checkpoint/       a gx checkpoint of both weights, once both are there: gx generate,
                      strip, eval and export read the folder as they read a run folder
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from gx.checkpoint import Checkpoint, save_checkpoint
from gx.config import experiment_from_dict, model_for
from gx.errors import GxError
from gx.importer.folder_images import as_images
from gx.models import GanModel
from gx.outputs import written_atomically
from gx.spec import ModelSpec

ROLES = ("generator", "discriminator")
SPEC_SUFFIXES = (".yaml", ".yml")


def _spec_text(spec: ModelSpec, header: str) -> str:
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    return lines + yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)


def _write_text(path: Path, text: str) -> None:
    with written_atomically(path) as staging:
        staging.write_text(text)


def _write_weights(path: Path, weights: dict[str, np.ndarray]) -> None:
    with written_atomically(path, "--out") as staging:
        save_file(
            {key: np.ascontiguousarray(value) for key, value in weights.items()}, str(staging)
        )


def write_spec_file(
    path: Path, spec: ModelSpec, source: str, weights: dict[str, np.ndarray] | None
) -> list[Path]:
    """One network's spec (and weights beside it); the paths written."""
    header = (
        f"{source}, imported by gx import.\n"
        "A network spec: put it under model.generator (or model.discriminator) of an "
        "experiment\nwith model: {name: custom}; see experiments/dcgan_dense.yaml."
    )
    _write_text(path, _spec_text(spec, header))
    written = [path]
    if weights is not None:
        _write_weights(path.with_suffix(".safetensors"), weights)
        written.append(path.with_suffix(".safetensors"))
    return written


def role_of(spec: ModelSpec) -> str:
    """generator (takes z) or discriminator (takes image): the names gx's trainer feeds."""
    roles = [role for role, key in zip(ROLES, ("z", "image")) if key in spec.inputs]
    if len(roles) != 1:
        raise GxError(
            f"an import folder gathers a GAN, so the network's inputs must say its role: "
            f"z[, label] for a generator, image[, label] for a discriminator (got "
            f"{', '.join(spec.inputs)}); rename the --input options, or write one spec "
            "with --out NAME.yaml"
        )
    return roles[0]


def _read_other(folder: Path, role: str) -> tuple[ModelSpec | None, dict[str, np.ndarray] | None]:
    """The other network of the folder, if imported before (weights only if its spec is)."""
    spec_path = folder / f"{role}.yaml"
    if not spec_path.is_file():
        return None, None
    try:
        spec = ModelSpec.from_dict(yaml.safe_load(spec_path.read_text()), str(spec_path))
        weights_path = folder / f"{role}.safetensors"
        weights = load_file(str(weights_path)) if weights_path.is_file() else None
    except (OSError, yaml.YAMLError, SafetensorError) as error:
        raise GxError(
            f"{spec_path} cannot be read ({error}); import the {role} again into {folder}"
        ) from None
    return spec, weights


def _experiment(folder: Path, specs: dict[str, ModelSpec]) -> tuple[dict[str, Any], GanModel]:
    """The folder's experiment: its own settings if it has one, the model replaced."""
    path = folder / "experiment.yaml"
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise GxError(
                f"{path} cannot be read ({error}); fix it, or delete it for a fresh one"
            ) from None
        settings = loaded if isinstance(loaded, dict) else {}
    if not settings:
        _, height, _ = specs["discriminator"].inputs["image"].shape
        output_kind = specs["discriminator"].output_kind
        settings = {
            "name": re.sub(r"[^A-Za-z0-9_.-]", "_", folder.resolve().name) or "imported",
            "seed": 0,
            "data": {"dataset": "mnist", "split": "train", "image_size": height},
            # gx's bce reads probabilities: a discriminator without a final sigmoid trains
            # with least squares
            "train": {
                "epochs": 1,
                "batch_size": 64,
                "loss": "bce" if output_kind == "sigmoid" else "mse",
            },
            "optimizer": {
                role: {"kind": "adam", "lr": 0.0002, "betas": [0.5, 0.999]} for role in ROLES
            },
        }
    model = {"name": "custom", **{role: specs[role].to_dict() for role in ROLES}}
    # the model after name and seed, as in experiments/
    ordered: dict[str, Any] = {key: settings[key] for key in ("name", "seed") if key in settings}
    ordered["model"] = model
    ordered.update((key, value) for key, value in settings.items() if key not in ordered)
    settings = ordered
    experiment = experiment_from_dict(settings, str(path))
    return settings, model_for(experiment)


def write_import_folder(
    folder: Path, spec: ModelSpec, source: str, weights: dict[str, np.ndarray] | None
) -> tuple[list[Path], list[str]]:
    """Add one network to an import folder (see the module docstring); the paths written, and
    notes on what the folder's spec does differently from the declaration.

    Everything is checked before the first file is written, so a mistake leaves the folder as
    it was.
    """
    if folder.exists() and not folder.is_dir():
        raise GxError(f"--out {folder} is a file; name a folder, or a NAME.yaml for one spec")
    role = role_of(spec)
    other_role = ROLES[1 - ROLES.index(role)]
    other_spec, other_weights = _read_other(folder, other_role)
    spec, note = as_images(role, spec, other_spec)
    notes = [note] if note else []
    experiment: tuple[dict[str, Any], GanModel] | None = None
    if other_spec is not None:
        experiment = _experiment(folder, {role: spec, other_role: other_spec})
        if other_weights is not None:
            other_spec.check_state(other_weights, str(folder / f"{other_role}.safetensors"))

    written = write_spec_file(folder / f"{role}.yaml", spec, source, weights)
    stale = [folder / "checkpoint"] + ([] if weights else [folder / f"{role}.safetensors"])
    for path in stale:  # weights that no longer describe this folder's networks
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if experiment is None:
        return written, notes
    settings, model = experiment
    _write_text(
        folder / "experiment.yaml",
        yaml.safe_dump(settings, sort_keys=False, default_flow_style=None),
    )
    written.append(folder / "experiment.yaml")
    if weights is not None and other_weights is not None:
        arrays = {role: weights, other_role: other_weights}
        save_checkpoint(
            folder / "checkpoint",
            Checkpoint(
                model,
                arrays["generator"],
                arrays["discriminator"],
                {},
                {},
                {"step": 0, "experiment": settings["name"], "imported_from": source},
            ),
        )
        written.append(folder / "checkpoint")
    return written, notes
