"""What the losses read of an experiment's settings.

gx.config's ``Experiment`` has all of it. The losses sit below the experiment's schema (which
names them), so they describe what they read instead of importing it.
"""

from __future__ import annotations

from typing import Optional, Protocol


class LossSettings(Protocol):
    """The ``train`` section's settings of the losses and terms."""

    @property
    def loss(self) -> str: ...
    @property
    def real_label(self) -> float: ...
    @property
    def class_loss(self) -> float: ...
    @property
    def fake_class(self) -> bool: ...
    @property
    def clip_d(self) -> Optional[float]: ...
    @property
    def gradient_penalty(self) -> str: ...
    @property
    def penalty_weight(self) -> Optional[float]: ...
    @property
    def penalty_power(self) -> float: ...
    @property
    def began_gamma(self) -> float: ...
    @property
    def began_lambda_k(self) -> float: ...
    @property
    def ebgan_margin(self) -> float: ...
    @property
    def pullaway_weight(self) -> float: ...
    @property
    def info_categorical(self) -> float: ...
    @property
    def info_continuous(self) -> float: ...


class _NamedModel(Protocol):
    @property
    def name(self) -> str: ...


class ExperimentSettings(Protocol):
    """An experiment, as far as its losses' checks read it: the model's name (for the fix a
    message suggests) and the ``train`` section."""

    @property
    def model(self) -> _NamedModel: ...
    @property
    def train(self) -> LossSettings: ...
