"""D's heads beside its first output, and the terms that read them: AC-GAN's and SGAN's class
loss, and InfoGAN's information loss.

D's outputs come in this order: its first output (what the adversarial loss reads), then one
head per term the experiment turns on: the class logits (``train.class_loss`` or
``train.info_categorical``), one estimate per continuous code of G's (``train.info_continuous``,
in G's input order), the embedding (``train.pullaway_weight``). Outputs after those are left
unread. A D whose only head is the class logits may also give them in its one output, after
its score (1 + classes values: cdcgan's ``d_classifier``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gx.errors import GxError
from gx.losses.judgement import Judgement

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.losses.settings import ExperimentSettings
    from gx.models import GanModel


@dataclass(frozen=True)
class HeadLayout:
    """Which of D's outputs each term reads."""

    class_logits: int | None = None  # index among D's outputs
    codes: tuple[int, ...] = ()
    embedding: int | None = None
    packed: bool = False  # the class logits follow the score in D's one output

    def width(self, model: GanModel) -> int:
        """How many logits the class head gives."""
        shapes = [value.shape for value in model.discriminator.output_values]
        if self.packed:
            return shapes[0][0] - 1
        assert self.class_logits is not None
        return shapes[self.class_logits][0]

    def judge(self, images: Tensor, output: Any) -> Judgement:
        """D's output (a tensor, or a tuple for a D of several outputs) as a Judgement."""
        outputs = output if isinstance(output, tuple) else (output,)
        if self.packed:
            return Judgement(images, output[:, :1], class_logits=output[:, 1:])
        return Judgement(
            images,
            outputs[0],
            class_logits=None if self.class_logits is None else outputs[self.class_logits],
            codes=tuple(outputs[index] for index in self.codes),
            embedding=None if self.embedding is None else outputs[self.embedding],
        )


def class_head_width(experiment: ExperimentSettings, model: GanModel) -> int | None:
    """How many logits D's class head gives: G's classes, and SGAN's "fake" class; None where
    G takes no labels (SGAN with an unconditional G: any head of 3 or more logits)."""
    if not model.conditional:
        return None
    return model.classes + experiment.train.fake_class


def label_classes(experiment: ExperimentSettings, model: GanModel) -> int:
    """How many classes the real images' labels must fall in (0: the run reads no labels)."""
    if model.conditional:
        return model.classes
    train = experiment.train
    if train.class_loss and train.fake_class:
        return head_layout(experiment, model).width(model) - 1
    return 0


class _Head:
    """One head a term reads: what reads it, and the shape it must have (None: any)."""

    def __init__(self, reader: str, shape: tuple[int, ...] | None, least: int = 0) -> None:
        self.reader, self.shape, self.least = reader, shape, least

    def fits(self, shape: tuple[int, ...]) -> bool:
        if self.least:
            return len(shape) == 1 and shape[0] >= self.least
        return self.shape is None or shape == self.shape

    def describe(self) -> str:
        if self.least:
            return f"one logit per class and one for fakes, ({self.least} or more,)"
        return "an embedding" if self.shape is None else str(self.shape)


def head_layout(experiment: ExperimentSettings, model: GanModel) -> HeadLayout:
    """Where D's heads are for the terms the experiment turns on; one clear line if D lacks one."""
    train, spec = experiment.train, model.discriminator
    wants_class = bool(train.class_loss or train.info_categorical)
    codes = model.codes if train.info_continuous else ()
    wanted: list[_Head] = []
    if wants_class:
        reader = "train.class_loss" if train.class_loss else "train.info_categorical"
        width = class_head_width(experiment, model)
        wanted.append(_Head(reader, None if width is None else (width,), 3 if width is None else 0))
    wanted += [
        _Head(f"train.info_continuous (code '{name}')", model.code_shape(name)) for name in codes
    ]
    if train.pullaway_weight:
        wanted.append(_Head("train.pullaway_weight", None))
    given = [value.shape for value in spec.output_values]
    if wants_class and len(wanted) == 1 and len(given) == 1:
        head = wanted[0]
        if len(given[0]) == 1 and head.fits((given[0][0] - 1,)):
            check_raw_logits(experiment, model, packed=True)
            return HeadLayout(packed=True)
    for index, head in enumerate(wanted, start=1):
        if index >= len(given) or not head.fits(given[index]):
            found = "no such output" if index >= len(given) else str(given[index])
            name = experiment.model.name
            fix = "give it d_classifier: true" if name == "cdcgan" else "give D that head"
            raise GxError(
                f"{head.reader} reads D's output {index + 1}, {head.describe()}, but '{name}' "
                f"gives {found}; {fix} (D's outputs: its score, then one head per term: class "
                "logits, codes, embedding)"
            )
    indices = iter(range(1, len(wanted) + 1))
    layout = HeadLayout(
        class_logits=next(indices) if wants_class else None,
        codes=tuple(next(indices) for _ in codes),
        embedding=next(indices) if train.pullaway_weight else None,
    )
    if wants_class:
        check_raw_logits(experiment, model, packed=False)
    return layout


def check_raw_logits(experiment: ExperimentSettings, model: GanModel, packed: bool) -> None:
    """The class head must give raw logits, which the cross-entropy reads."""
    spec = model.discriminator
    head = spec.outputs[0 if packed else 1]
    kind = next(info.kind for info in spec.infos if info.name == head)
    if kind == "sigmoid" or (packed and experiment.train.loss == "bce"):
        raise GxError(
            "D's class head must give raw logits, which the cross-entropy reads, so D cannot "
            "end it in a sigmoid (nor, with score and logits in one output, use train.loss "
            "bce); use train.loss hinge or mse with D's raw output, or a separate class head"
        )


class ClassTerm:
    """AC-GAN's auxiliary classifier (Odena et al., 2017), in D's and G's losses alike:

    L_class = w * E[-log softmax(logits)[label]]

    D on real images with their labels and on fakes with the labels they were drawn for; G on
    its fakes. SGAN's (Odena, 2016; ``train.fake_class``) head has one more logit, the class
    "fake": D learns the real images' classes and to put fakes in that class; G, when it takes
    labels, is pushed towards the class it drew.
    """

    def __init__(self, weight: float, fake_class: int | None) -> None:
        self.weight, self.fake_class = weight, fake_class  # the fake class's index, SGAN

    @staticmethod
    def check(experiment: ExperimentSettings, model: GanModel) -> None:
        if not model.conditional and not experiment.train.fake_class:
            raise GxError(
                "train.class_loss needs the classes G draws its fakes for: give G a 'label' "
                "input, or set train.fake_class: true (SGAN: fakes are D's extra class)"
            )

    def term(self, ops: Backend, logits: Tensor, labels: Tensor) -> Tensor:
        return self.weight * ops.cross_entropy(logits, labels)

    def fake_labels(self, ops: Backend, drawn: Tensor | None, count: int) -> Tensor:
        """What D is taught the fakes are: their drawn classes, or SGAN's fake class."""
        if self.fake_class is None:
            return drawn
        return ops.tensor(np.full(count, self.fake_class, np.int64))


class InformationTerm:
    """InfoGAN's information loss (Chen et al., 2016): D's heads estimate the codes G drew its
    fakes from, and G and D together (an optimizer over both, ``optimizer.info``) minimize

    L_I = w_cat * E[-log softmax(Q_cat(G(z, c)))[c_cat]] + w_con * E[(Q_con(G(z, c)) - c_con)^2]

    c_cat: G's label (``train.info_categorical``), c_con: G's codes, uniform in [-1, 1]
    (``train.info_continuous``): the categorical code's cross-entropy and, for the continuous
    codes, the log-likelihood of a Gaussian of fixed variance up to its scale, i.e. the mean
    squared error, averaged over each code's values.
    """

    def __init__(self, categorical: float, continuous: float, codes: tuple[str, ...]) -> None:
        self.categorical, self.continuous, self.codes = categorical, continuous, codes

    @staticmethod
    def check(experiment: ExperimentSettings, model: GanModel) -> None:
        train = experiment.train
        if train.info_categorical and not model.conditional:
            raise GxError(
                "train.info_categorical reads G's categorical code, its 'label' input, but G "
                "takes none; give G a label input, or set train.info_categorical: 0"
            )
        if train.info_continuous and not model.codes:
            raise GxError(
                "train.info_continuous reads G's continuous codes, but G has none; declare one "
                "among G's inputs as {uniform: [size]}, or set train.info_continuous: 0"
            )

    def loss(self, ops: Backend, fake: Judgement, inputs: dict[str, Tensor]) -> Tensor:
        loss: Any = 0.0
        if self.categorical:
            loss = self.categorical * ops.cross_entropy(fake.class_logits, inputs["label"])
        if self.continuous:
            for name, estimate in zip(self.codes, fake.codes):
                loss = loss + self.continuous * ((estimate - inputs[name]) ** 2).mean()
        return loss
