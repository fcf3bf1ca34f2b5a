"""The experiment file: a YAML mapping that says what to train and how.

The schema is a tree of frozen dataclasses. Each field's type says what kind of value it takes and
its ``metadata`` holds the few extra rules (ranges, choices, a name pattern), so one recursive
function checks any file against it and every mistake is reported the same way: the file, the
dotted key, what was expected and what was found. The metadata also says what a resumed run may
change (``resume_may_change``) and, for a setting added after some runs were written, the value
those runs had (``older``): each setting is declared once, here.

Typical use::

    experiment = load_experiment("experiments/cdcgan.yaml", ["train.epochs=5"])
    experiment.train.batch_size        # 64
    experiment.to_dict()               # plain data, written next to a run's outputs
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import operator
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from gx.data.registry import DATASET_NAMES, SPLITS
from gx.errors import GxError
from gx.losses import ADVERSARIAL_LOSSES, GRADIENT_PENALTIES, check_losses
from gx.models import REFERENCE_MODELS, GanModel, build_model
from gx.precision import FLOAT32, PRECISIONS
from gx.spec.graph import INIT_SCHEMES
from gx.values import closest, is_number, is_whole

REFERENCE_MODEL_NAMES = tuple(REFERENCE_MODELS)
CUSTOM_MODEL = "custom"


def _setting(
    default: Any = MISSING,
    *,
    factory: Any = MISSING,
    resume_may_change: bool = False,
    older: Any = MISSING,
    **rules: Any,
) -> Any:
    """A dataclass field with validation rules, and what a resume makes of it.

    Rules: ``choices`` (allowed values), ``min``/``max`` (inclusive bounds), ``gt``/``lt``
    (exclusive bounds), ``pattern`` (a regex the whole string must match), ``scalars`` (a mapping
    whose values must be plain scalars), ``example`` (a YAML line shown when a required key is
    missing). For list-valued fields the rules apply to each item.

    ``resume_may_change``: the setting only says how long to train or what to write along the
    way, so ``--resume`` may give another value; any other change would make the continued run a
    different training. ``older``: the setting was added after some run folders were written,
    and a saved config without it had this value.
    """
    metadata = dict(rules, resume_may_change=resume_may_change)
    if older is not MISSING:
        metadata["older"] = older
    return field(default=default, default_factory=factory, metadata=metadata)


# Annotations use Optional/Union rather than ``X | None`` so typing.get_type_hints can still
# evaluate them on Python 3.9.


@dataclass(frozen=True)
class ModelConfig:
    name: str = _setting(
        choices=(*REFERENCE_MODEL_NAMES, CUSTOM_MODEL),
        example="model: {name: cdcgan}",
    )
    # Keyword arguments for the reference model builder, which checks them itself.
    options: dict[str, Any] = _setting(factory=dict, scalars=True)
    # Model-spec mappings, only for a custom model; gx.spec checks their contents.
    generator: Optional[dict[str, Any]] = None
    discriminator: Optional[dict[str, Any]] = None
    init: Optional[str] = _setting(None, choices=INIT_SCHEMES)


@dataclass(frozen=True)
class DataConfig:
    # A published dataset, or 'folder': class-labelled images in data.root (gx.data.folder).
    dataset: str = _setting("mnist", choices=DATASET_NAMES)
    root: Optional[str] = _setting(None, resume_may_change=True)
    split: str = _setting("train", choices=tuple(SPLITS))
    # Images are resized to image_size x image_size; null keeps their own size (one for all).
    image_size: Optional[int] = _setting(28, min=8, max=256)
    # 1 (grayscale) or 3 (RGB); null: whatever the model's images have.
    channels: Optional[int] = _setting(None, choices=(1, 3), older=None)
    download: bool = _setting(True, resume_may_change=True)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _setting(1, min=0, resume_may_change=True)
    max_steps: Optional[int] = _setting(None, min=1, resume_may_change=True)
    batch_size: int = _setting(64, min=1)
    order: str = _setting("d_then_g", choices=("d_then_g", "g_then_d"))
    # gx.losses: each loss's docstring gives its formula and what D must output (bce and mse:
    # probabilities; hinge, wasserstein, the relativistic ones: raw scores; began, ebgan: a
    # reconstruction of the image)
    loss: str = _setting("bce", choices=tuple(ADVERSARIAL_LOSSES))
    d_steps: int = _setting(1, min=1)
    real_label: float = _setting(1.0, gt=0, max=1)
    sample_every: int = _setting(200, min=1, resume_may_change=True)
    checkpoint_every: int = _setting(1000, min=1, resume_may_change=True)
    eval_at_end: bool = _setting(False, resume_may_change=True)
    # also write TensorBoard event files (needs gx[tensorboard])
    tensorboard: bool = _setting(False, resume_may_change=True)
    # With --nproc N: batch norm over the global batch (false: over each process's share, a
    # different computation whose results depend on N).
    sync_batch_norm: bool = _setting(True, older=True)
    # An exponential moving average of G's weights for sampling, grids, strips, eval and export
    # (gx.train.ema); null: sample G's own weights.
    ema_decay: Optional[float] = _setting(None, gt=0, lt=1, older=None)
    # until this step the average is G's weights themselves
    ema_start: int = _setting(0, min=0, older=0)
    # AC-GAN (gx.losses.heads): the weight of D's class cross-entropy; 0: D scores real/fake only
    class_loss: float = _setting(0.0, min=0, older=0.0)
    # SGAN: D's class head has one more logit, the class "fake", which fakes are taught to be
    fake_class: bool = _setting(False, older=False)
    # WGAN: after each D update, clamp D's parameters into [-clip_d, clip_d]; null: no clipping
    clip_d: Optional[float] = _setting(None, gt=0, older=None)
    # gx.losses.penalties: a term of D's loss in its input gradient
    gradient_penalty: str = _setting("none", choices=("none", *GRADIENT_PENALTIES), older="none")
    # null: the paper's for that penalty
    penalty_weight: Optional[float] = _setting(None, min=0, older=None)
    penalty_power: float = _setting(6.0, min=2, older=6.0)  # wgan_div's p
    began_gamma: float = _setting(0.75, min=0, max=1, older=0.75)  # BEGAN's diversity ratio
    began_lambda_k: float = _setting(0.001, min=0, older=0.001)  # BEGAN's controller gain
    ebgan_margin: float = _setting(1.0, gt=0, older=1.0)  # EBGAN's margin m on the fakes' energy
    # EBGAN-PT: the pull-away term on D's embedding head, in G's loss
    pullaway_weight: float = _setting(0.0, min=0, older=0.0)
    # InfoGAN (gx.losses.heads): weights of the information loss on G's label (categorical
    # code) and on G's continuous codes; either > 0 adds an update of G and D together
    # (optimizer.info) after each G update
    info_categorical: float = _setting(0.0, min=0, older=0.0)
    info_continuous: float = _setting(0.0, min=0, older=0.0)
    # Mixed precision (gx.precision): bf16 or fp16 (CUDA only) rounds the operands and outputs
    # of the matrix-product layers; weights, optimizer state and checkpoints stay float32, so a
    # resumed run may continue in another precision
    precision: str = _setting(FLOAT32, choices=PRECISIONS, older=FLOAT32, resume_may_change=True)


@dataclass(frozen=True)
class OptimizerSettings:
    """One network's optimizer. (``older``: runs written before optimizer.info, and before
    alpha and weight_decay, had these values.)"""

    kind: str = _setting("adam", choices=("adam", "adamw", "rmsprop", "sgd"), older="adam")
    lr: float = _setting(0.0002, gt=0, older=0.0002)
    # adam, adamw
    betas: tuple[float, float] = _setting((0.5, 0.999), min=0, lt=1, older=[0.5, 0.999])
    eps: float = _setting(1.0e-8, gt=0, older=1.0e-8)  # adam, adamw, rmsprop
    momentum: float = _setting(0.0, min=0, lt=1, older=0.0)  # sgd only
    # rmsprop only: the squares' smoothing
    alpha: float = _setting(0.99, min=0, lt=1, older=0.99)
    weight_decay: float = _setting(0.01, min=0, older=0.01)  # adamw only: the decoupled decay


@dataclass(frozen=True)
class Milestone:
    """At the start of 0-based ``epoch``, multiply both learning rates by ``factor``."""

    epoch: int = _setting(min=1, example="milestones: [{epoch: 10, factor: 0.1}]")
    factor: float = _setting(gt=0, example="milestones: [{epoch: 10, factor: 0.1}]")


@dataclass(frozen=True)
class Schedule:
    """Per-step factors on both learning rates (gx.train.schedule), times the milestones'."""

    warmup_steps: int = _setting(0, min=0, older=0)
    decay: str = _setting("none", choices=("none", "linear", "cosine"), older="none")
    # where the decay begins, at the warm-up's end or later
    decay_start: int = _setting(0, min=0, older=0)
    # where the decay ends; null: the run's end
    decay_steps: Optional[int] = _setting(None, min=1, older=None)
    final_factor: float = _setting(0.0, min=0, max=1, older=0.0)


@dataclass(frozen=True)
class OptimizerConfig:
    generator: OptimizerSettings = field(default_factory=OptimizerSettings)
    discriminator: OptimizerSettings = field(default_factory=OptimizerSettings)
    # InfoGAN's information loss: one optimizer over G's and D's parameters together
    info: OptimizerSettings = field(default_factory=OptimizerSettings)
    milestones: tuple[Milestone, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True)
class Experiment:
    name: str = _setting(pattern=r"[A-Za-z0-9_.-]+", example="name: cdcgan")
    model: ModelConfig  # type: ignore[misc]  # required; name's _setting has no default either
    seed: int = _setting(0, min=0)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and scalars for yaml.safe_dump; experiment_from_dict inverts it."""
        return _plain(self)


# ---------------------------------------------------------------------------------------------
# Loading


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read an experiment file, apply ``--set KEY=VALUE`` overrides, and check everything."""
    source = str(path)
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise GxError(f"{source}: no such experiment file; check the path") from None
    except OSError as error:
        reason = error.strerror or error
        raise GxError(f"{source}: cannot read the experiment file ({reason})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = _yaml_problem(error)
        raise GxError(f"{source}: not valid YAML ({problem}); fix the syntax") from None
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise GxError(
            f"{source}: the top level must be a mapping of 'key: value' lines, "
            f"got {found}; start from an example in experiments/"
        )
    for item in overrides:
        _apply_override(raw, item, source)
    return experiment_from_dict(raw, source)


def experiment_from_dict(data: Mapping[str, Any], source: str) -> Experiment:
    """Check plain data against the schema; ``source`` names where it came from in messages."""
    experiment = _build(Experiment, data, "", source)
    _check_model(experiment.model, source)
    _check_milestones(experiment.optimizer.milestones, source)
    _check_schedule(experiment.optimizer.schedule, source)
    return experiment


def _yaml_problem(error: yaml.YAMLError) -> str:
    """'line L, column C: problem' for a parser error, else the error's own text."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return " ".join(problem.split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


# ---------------------------------------------------------------------------------------------
# Overrides


def _apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    """Set one ``dotted.key=value`` in the raw mapping, before validation sees it."""
    key, equals, text = item.partition("=")
    key = key.strip()
    if not equals or not key:
        raise GxError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    where = f"{source} (--set {item})"
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise GxError(
            f"{where}: the value is not valid YAML ({_yaml_problem(error)}); "
            f"quote strings and write lists as [a, b]"
        ) from None
    parts = key.split(".")
    _check_override_key(parts, where)
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise GxError(f"{where}: '{section}' must be a mapping, got {child!r}")
        # Copy each mapping on the way down: a YAML alias (*name) may share it with another key.
        node[part] = node = dict(child)
    node[parts[-1]] = value


def _check_override_key(parts: list[str], where: str) -> None:
    """Raise unless the dotted key names a field of the schema (or lies in a free mapping)."""
    cls: type = Experiment
    for depth, part in enumerate(parts):
        section = ".".join(parts[:depth])
        fields = _schema(cls)
        if part not in fields:
            raise _unknown_key(where, section, part, list(fields))
        kind = _without_none(fields[part][1])
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            cls = kind
        elif typing.get_origin(kind) is dict:
            return  # model.options and the model specs take any keys
        elif depth < len(parts) - 1:
            here = ".".join(parts[: depth + 1])
            raise GxError(
                f"{where}: unknown key '{'.'.join(parts)}'; '{here}' has no keys "
                f"below it, set it whole, e.g. --set {here}=..."
            )


# ---------------------------------------------------------------------------------------------
# The validator: one recursive walk over the dataclass fields


@functools.cache
def _schema(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Field name -> (field, resolved type), in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def _without_none(kind: Any) -> Any:
    """``Optional[X]`` -> ``X``; anything else unchanged."""
    if typing.get_origin(kind) is Union:
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return inner
    return kind


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type, raw: Any, path: str, source: str) -> Any:
    """Turn the mapping ``raw`` into a ``cls`` instance, checking every key and value."""
    if raw is None:
        raw = {}  # a section whose lines are all commented out reads as null
    if not isinstance(raw, Mapping):
        raise _wrong_type(source, path, "a mapping", raw)
    fields = _schema(cls)
    for key in raw:
        if key not in fields:
            raise _unknown_key(source, path, key, list(fields))
    values = {}
    for name, (spec, kind) in fields.items():
        key = _join(path, name)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            # Recurse even when absent, so required keys inside are reported and defaults filled.
            values[name] = _build(kind, raw.get(name), key, source)
        elif name in raw:
            values[name] = _convert(kind, raw[name], key, spec.metadata, source)
        elif spec.default is MISSING and spec.default_factory is MISSING:
            example = spec.metadata.get("example", f"{name}: ...")
            raise GxError(f"{source}: missing required key '{key}'; add it, e.g. '{example}'")
    return cls(**values)


def _convert(kind: Any, value: Any, key: str, rules: Mapping[str, Any], source: str) -> Any:
    """Check one value against its declared type and rules; return it in the schema's form."""
    nullable = kind is not _without_none(kind)
    kind = _without_none(kind)
    if value is None and nullable:
        return None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value, key, source)
    origin = typing.get_origin(kind)
    if origin is tuple:
        return _convert_list(kind, value, key, rules, source)
    if origin is dict:
        return _convert_mapping(value, key, rules, source)
    value = _convert_scalar(kind, value, key, nullable, source)
    _check_rules(value, key, rules, nullable, source)
    return value


def _convert_list(kind: Any, value: Any, key: str, rules: Mapping[str, Any], source: str) -> tuple:
    args = typing.get_args(kind)
    variable = len(args) == 2 and args[1] is Ellipsis
    if not isinstance(value, (list, tuple)) or (not variable and len(value) != len(args)):
        wanted = "a list" if variable else f"a list of {len(args)} values"
        raise _wrong_type(source, key, wanted, value)
    return tuple(
        _convert(args[0], item, f"{key}[{index}]", rules, source)
        for index, item in enumerate(value)
    )


def _convert_mapping(value: Any, key: str, rules: Mapping[str, Any], source: str) -> dict:
    if not isinstance(value, Mapping):
        raise _wrong_type(source, key, "a mapping", value)
    for name, item in value.items():
        if not isinstance(name, str):
            raise GxError(f"{source}: keys under '{key}' must be strings, got {name!r}")
        if rules.get("scalars") and not isinstance(item, (bool, int, float, str, type(None))):
            raise _wrong_type(source, f"{key}.{name}", "a number, string, true/false or null", item)
    return copy.deepcopy(dict(value))


# YAML 1.1 (what PyYAML reads) needs a dot in a float, so '1e-3' arrives as a string.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _convert_scalar(kind: type, value: Any, key: str, nullable: bool, source: str) -> Any:
    if kind is float and (
        is_number(value) or isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip())
    ):
        number = float(value)
        if not math.isfinite(number):  # YAML's .inf and .nan, or an exponent past float range
            raise GxError(f"{source}: '{key}' must be a finite number, got {value!r}")
        return number
    if kind is int and is_whole(value):
        return value
    if kind in (bool, str) and isinstance(value, kind):
        return value
    wanted = _TYPE_NAMES[kind] + (" or null" if nullable else "")
    raise _wrong_type(source, key, wanted, value)


_BOUNDS = (
    ("gt", operator.gt, ">"),
    ("min", operator.ge, ">="),
    ("lt", operator.lt, "<"),
    ("max", operator.le, "<="),
)


def _check_rules(
    value: Any, key: str, rules: Mapping[str, Any], nullable: bool, source: str
) -> None:
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(str(choice) for choice in choices) + (" (or null)" if nullable else "")
        raise GxError(f"{source}: '{key}' must be one of {allowed}, got {value!r}")
    pattern = rules.get("pattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise GxError(
            f"{source}: '{key}' must match {pattern} (letters, digits, '_', '.', '-'; "
            f"not empty), got {value!r}"
        )
    if any(rule in rules and not holds(value, rules[rule]) for rule, holds, _ in _BOUNDS):
        wanted = " and ".join(
            f"{symbol} {rules[rule]}" for rule, _, symbol in _BOUNDS if rule in rules
        )
        raise GxError(f"{source}: '{key}' must be {wanted}, got {value!r}")


def _wrong_type(source: str, key: str, wanted: str, value: Any) -> GxError:
    where = f"'{key}'" if key else "the top level"
    return GxError(f"{source}: {where} must be {wanted}, got {value!r} ({type(value).__name__})")


def _unknown_key(source: str, section: str, key: Any, valid: list[str]) -> GxError:
    """Name the unknown key and suggest the closest valid one (or list them all)."""
    message = f"{source}: unknown key '{_join(section, str(key))}'"
    close = closest(key, valid)
    if close:
        return GxError(f"{message}; did you mean '{_join(section, close)}'?")
    level = f"under '{section}'" if section else "at the top level"
    return GxError(f"{message}; valid keys {level} are: {', '.join(valid)}")


# ---------------------------------------------------------------------------------------------
# Rules that involve more than one field


def _check_model(model: ModelConfig, source: str) -> None:
    custom = model.name == CUSTOM_MODEL
    if custom:
        for name in ("generator", "discriminator"):
            if getattr(model, name) is None:
                raise GxError(
                    f"{source}: 'model.{name}' is required when 'model.name' is "
                    f"custom; add it under model:, or use a reference model "
                    f"({', '.join(REFERENCE_MODEL_NAMES)})"
                )
        if model.options:
            raise GxError(
                f"{source}: 'model.options' is only for reference models, not custom; "
                f"put the settings into the model.generator/discriminator specs"
            )
        return
    for name in ("generator", "discriminator"):
        if getattr(model, name) is not None:
            raise GxError(
                f"{source}: 'model.{name}' is only used when 'model.name' is custom "
                f"(got '{model.name}'); remove it, or set 'model.name: custom'"
            )


def _check_milestones(milestones: Sequence[Milestone], source: str) -> None:
    for index in range(1, len(milestones)):
        previous, epoch = milestones[index - 1].epoch, milestones[index].epoch
        if epoch <= previous:
            raise GxError(
                f"{source}: 'optimizer.milestones[{index}].epoch' must be greater than "
                f"the previous milestone's epoch ({previous}), got {epoch}; list "
                f"milestones in increasing epoch order"
            )


def _check_schedule(schedule: Schedule, source: str) -> None:
    if schedule.decay_steps is None:
        return
    if schedule.decay_steps <= schedule.warmup_steps:
        raise GxError(
            f"{source}: 'optimizer.schedule.decay_steps' ({schedule.decay_steps}) must be "
            f"greater than 'optimizer.schedule.warmup_steps' ({schedule.warmup_steps}); "
            "the decay starts where the warm-up ends"
        )
    if schedule.decay_steps <= schedule.decay_start:
        raise GxError(
            f"{source}: 'optimizer.schedule.decay_steps' ({schedule.decay_steps}) must be "
            f"greater than 'optimizer.schedule.decay_start' ({schedule.decay_start}); "
            "the decay ends after it begins"
        )


# ---------------------------------------------------------------------------------------------
# What a resume may change, and what older run folders had


def resume_may_change() -> frozenset[str]:
    """The dotted keys of the settings a resumed run may change (``_setting``)."""
    return frozenset(key for key, rules in _leaf_rules(Experiment) if rules["resume_may_change"])


def older_settings() -> dict[str, Any]:
    """For each setting added after some run folders were written, the value a saved config
    without it had (``_setting``'s ``older``), by dotted key."""
    return {key: rules["older"] for key, rules in _leaf_rules(Experiment) if "older" in rules}


def _leaf_rules(cls: type, path: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """(dotted key, metadata) of every setting below ``cls`` that is not itself a section."""
    leaves = []
    for name, (spec, kind) in _schema(cls).items():
        key = _join(path, name)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            leaves += _leaf_rules(kind, key)
        else:
            leaves.append((key, {"resume_may_change": False, **spec.metadata}))
    return leaves


# ---------------------------------------------------------------------------------------------
# Back to plain data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {spec.name: _plain(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    return value


def model_for(experiment: Experiment) -> GanModel:
    """The experiment's networks, checked against its data's image size and channels (a null
    setting is checked against the images once they are loaded: gx.train.data) and against
    what its losses need D and G to output (gx.losses)."""
    config = experiment.model
    model = build_model(
        config.name, config.options, config.generator, config.discriminator, config.init
    )
    channels, height, width = model.image_shape
    size, wanted_channels = experiment.data.image_size, experiment.data.channels
    if size is not None and (height, width) != (size, size):
        raise GxError(
            f"model '{config.name}' works on {height}x{width} images but data.image_size "
            f"is {size}; set data.image_size: {height} (or --set data.image_size={height})"
        )
    if wanted_channels is not None and wanted_channels != channels:
        raise GxError(
            f"model '{config.name}' works on {channels}-channel images but data.channels is "
            f"{wanted_channels}; set data.channels: {channels}, or null to follow the model"
        )
    check_losses(experiment, model)
    return model
