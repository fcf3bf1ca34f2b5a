"""The reference networks of docs/models.md, as gx specs, and custom models.

A ``GanModel`` is a generator spec, a discriminator spec and what the trainer must know to feed
them. Generators take inputs ``z`` (and ``label`` when conditional); discriminators take ``image``
(and ``label``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

from gx.errors import GxError
from gx.models import cdcgan, cgan, dcgan, gan
from gx.spec import ModelSpec
from gx.values import is_number


@dataclass(frozen=True)
class GanModel:
    name: str
    generator: ModelSpec
    discriminator: ModelSpec

    @property
    def classes(self) -> int:
        label = self.generator.inputs.get("label")
        return label.classes if label is not None else 0

    @property
    def conditional(self) -> bool:
        return self.classes > 0

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return self.generator.inputs["z"].shape

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.discriminator.inputs["image"].shape

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generator": self.generator.to_dict(),
            "discriminator": self.discriminator.to_dict(),
        }


REFERENCE_MODELS: dict[str, Callable[..., tuple[dict, dict]]] = {
    "cdcgan": cdcgan.build,
    "dcgan": dcgan.build,
    "cgan": cgan.build,
    "gan": gan.build,
}


def _check_pair(name: str, generator: ModelSpec, discriminator: ModelSpec) -> None:
    """The trainer's contract: G(z[, label]) makes what D(image[, label]) reads."""
    if "z" not in generator.inputs:
        raise GxError(f"model '{name}': the generator needs an input named 'z' (the noise)")
    if "image" not in discriminator.inputs:
        raise GxError(f"model '{name}': the discriminator needs an input named 'image'")
    made, read = generator.output_value.shape, discriminator.inputs["image"].shape
    if made != read:
        raise GxError(
            f"model '{name}': the generator makes images {made} but the discriminator "
            f"reads {read}; make the generator's last layer output {read}"
        )
    g_label, d_label = generator.inputs.get("label"), discriminator.inputs.get("label")
    if (g_label is None) != (d_label is None) or (
        g_label and d_label and g_label.classes != d_label.classes
    ):
        raise GxError(
            f"model '{name}': generator and discriminator must both take a 'label' "
            "input with the same number of classes, or neither"
        )
    if set(generator.inputs) - {"z", "label"} or set(discriminator.inputs) - {"image", "label"}:
        raise GxError(
            f"model '{name}': generator inputs must be z[, label], discriminator inputs "
            "image[, label]"
        )


def _option_fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the kind of the option's default (an int is a fine float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return is_number(value)
    return isinstance(value, type(default))


def _reference_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    accepted = inspect.signature(REFERENCE_MODELS[name]).parameters
    for key, value in options.items():
        if key not in accepted:
            raise GxError(
                f"model '{name}' has no option '{key}'; its options are: {', '.join(accepted)}"
            )
        default = accepted[key].default
        if not _option_fits(value, default):
            raise GxError(
                f"model '{name}': option '{key}' takes a {type(default).__name__} "
                f"like its default {default!r}, got {value!r}"
            )
    return dict(options)


def build_model(
    name: str,
    options: Mapping[str, Any] | None = None,
    generator: Mapping[str, Any] | None = None,
    discriminator: Mapping[str, Any] | None = None,
    init: str | None = None,
) -> GanModel:
    """A reference model by name (with options), or ``custom`` from two spec mappings."""
    if name == "custom":
        if generator is None or discriminator is None:
            raise GxError("model 'custom' needs both 'generator' and 'discriminator' specs")
        g_dict, d_dict = dict(generator), dict(discriminator)
    elif name in REFERENCE_MODELS:
        g_dict, d_dict = REFERENCE_MODELS[name](**_reference_options(name, options or {}))
    else:
        raise GxError(f"unknown model '{name}'; use one of {', '.join(REFERENCE_MODELS)} or custom")
    if init is not None:
        g_dict["init"] = d_dict["init"] = init
    g_spec = ModelSpec.from_dict(g_dict, f"{name} generator")
    d_spec = ModelSpec.from_dict(d_dict, f"{name} discriminator")
    _check_pair(name, g_spec, d_spec)
    return GanModel(name, g_spec, d_spec)


def model_from_dict(data: Mapping[str, Any]) -> GanModel:
    """Rebuild a model from ``GanModel.to_dict()`` (what checkpoints store)."""
    custom = build_model("custom", generator=data["generator"], discriminator=data["discriminator"])
    return GanModel(data["name"], custom.generator, custom.discriminator)


# What model_for reads of an experiment. gx.config's Experiment has all of it; the experiment's
# schema imports this package (for the reference models' names), so this package describes what
# it reads instead of importing the schema.


class _ModelSection(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def options(self) -> Mapping[str, Any]: ...
    @property
    def generator(self) -> Optional[Mapping[str, Any]]: ...
    @property
    def discriminator(self) -> Optional[Mapping[str, Any]]: ...
    @property
    def init(self) -> Optional[str]: ...


class _DataSection(Protocol):
    @property
    def image_size(self) -> Optional[int]: ...
    @property
    def channels(self) -> Optional[int]: ...


class _TrainSection(Protocol):
    @property
    def loss(self) -> str: ...
    @property
    def real_label(self) -> float: ...
    @property
    def class_loss(self) -> float: ...


class ModelSettings(Protocol):
    """An experiment's settings that decide its networks (gx.config.Experiment)."""

    @property
    def model(self) -> _ModelSection: ...
    @property
    def data(self) -> _DataSection: ...
    @property
    def train(self) -> _TrainSection: ...


def model_for(experiment: ModelSettings) -> GanModel:
    """The experiment's networks, checked against its data's image size and channels (a null
    setting is checked against the images once they are loaded: gx.train.data)."""
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
    _check_loss(experiment, model)
    return model


def _check_loss(experiment: ModelSettings, model: GanModel) -> None:
    """The hinge loss scores D's raw outputs: a final sigmoid would bound them to (0, 1). The
    class loss reads class logits after D's score."""
    if experiment.train.class_loss:
        _check_class_output(experiment, model)
    if experiment.train.loss != "hinge":
        return
    last = model.discriminator.infos[-1].kind
    if last == "sigmoid":
        fix = "d_output: logit" if experiment.model.name == "cdcgan" else "no final sigmoid"
        raise GxError(
            f"train.loss hinge needs D's raw scores, but '{experiment.model.name}' ends D in a "
            f"sigmoid; give it {fix}, or use train.loss bce"
        )
    if experiment.train.real_label != 1.0:
        raise GxError(
            "train.real_label only applies to the bce and mse losses; remove it for hinge"
        )


def _check_class_output(experiment: ModelSettings, model: GanModel) -> None:
    name, output = experiment.model.name, model.discriminator.output_value.shape
    fix = "d_classifier: true" if name == "cdcgan" else "a D that ends in score and class logits"
    if not model.conditional or output != (1 + model.classes,):
        raise GxError(
            f"train.class_loss needs a conditional D whose output is its score and one logit per "
            f"class ({1 + model.classes} values), but '{name}' gives {output}; give it {fix}, "
            "or set train.class_loss: 0"
        )
    if model.discriminator.infos[-1].kind == "sigmoid" or experiment.train.loss == "bce":
        raise GxError(
            "train.class_loss reads D's raw class logits, so D cannot end in a sigmoid nor use "
            "train.loss bce; use train.loss hinge or mse with D's raw output"
        )
