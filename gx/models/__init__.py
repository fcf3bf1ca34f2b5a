"""The reference networks of docs/models.md, as gx specs, and custom models.

A ``GanModel`` is a generator spec, a discriminator spec and what the trainer must know to feed
them. Generators take inputs ``z`` (standard normal noise), optionally ``label`` (a uniformly
drawn class: conditional models) and inputs declared ``{uniform: [size]}`` (codes drawn uniformly
in [-1, 1], InfoGAN's); discriminators take ``image``, and ``label`` where G takes one.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

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
    def discriminator_reads_labels(self) -> bool:
        return "label" in self.discriminator.inputs

    @property
    def codes(self) -> tuple[str, ...]:
        """G's continuous codes: its inputs drawn uniformly in [-1, 1], in the spec's order."""
        return tuple(name for name, value in self.generator.inputs.items() if value.uniform)

    def code_shape(self, name: str) -> tuple[int, ...]:
        return self.generator.inputs[name].shape

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


def middle_codes(generator: ModelSpec, count: int) -> dict[str, np.ndarray]:
    """G's continuous codes held at 0, the middle of their range, for ``count`` samples: what
    sample grids and the sampling tools feed G (as InfoGAN's class grids do)."""
    return {
        name: np.zeros((count, *value.shape), np.float32)
        for name, value in generator.inputs.items()
        if value.uniform
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
    if len(generator.outputs) != 1:
        raise GxError(
            f"model '{name}': the generator has {len(generator.outputs)} outputs; it makes "
            "images, one output"
        )
    made, read = generator.output_value.shape, discriminator.inputs["image"].shape
    if made != read:
        raise GxError(
            f"model '{name}': the generator makes images {made} but the discriminator "
            f"reads {read}; make the generator's last layer output {read}"
        )
    # A discriminator may leave the labels out while G takes them: AC-GAN's reads the class
    # from the image itself (its class head). A D with labels needs a G that makes them.
    g_label, d_label = generator.inputs.get("label"), discriminator.inputs.get("label")
    # A D may read no labels where G takes them (AC-GAN's and InfoGAN's D infer them), but
    # it cannot read labels that fakes do not have.
    if d_label is not None and (g_label is None or g_label.classes != d_label.classes):
        raise GxError(
            f"model '{name}': a discriminator that takes a 'label' input needs a generator "
            "that takes one with the same number of classes"
        )
    codes = {key for key, value in generator.inputs.items() if value.uniform}
    if (
        set(generator.inputs) - {"z", "label"} - codes
        or set(discriminator.inputs) - {"image", "label"}
        or any(value.uniform for value in discriminator.inputs.values())
        or generator.inputs["z"].uniform
    ):
        raise GxError(
            f"model '{name}': generator inputs must be z[, label] and any codes declared "
            "{uniform: [size]}, discriminator inputs image[, label]"
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
