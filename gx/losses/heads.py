"""Terms on D's heads beside its score: the AC-GAN class loss.

A discriminator with a class head gives its score and one logit per class, either as two outputs
(the spec's ``output: [score, class_logits]``, as AC-GAN code returns a tuple) or as one output
of 1 + classes values, the score first (cdcgan's ``d_classifier``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gx.errors import GxError
from gx.losses.adversarial import ends_in_sigmoid

if TYPE_CHECKING:
    from gx.backends.base import Backend, Tensor
    from gx.config import Experiment
    from gx.models import GanModel


def score_and_heads(output: Any) -> tuple[Tensor, tuple[Tensor, ...]]:
    """D's score and its other outputs (none for a D of one output)."""
    if isinstance(output, tuple):
        return output[0], output[1:]
    return output, ()


def class_logits_output(output: Any) -> tuple[Tensor, Tensor]:
    """(score, class logits) of a D with a class head, in either form."""
    score, heads = score_and_heads(output)
    if heads:
        return score, heads[0]
    return output[:, :1], output[:, 1:]


def class_term(ops: Backend, weight: float, logits: Tensor, labels: Tensor) -> Tensor:
    """AC-GAN's auxiliary classifier term (Odena et al., 2017), in D's and G's losses alike:

    L_class = w * E[-log softmax(logits)[label]]

    on real images with their labels and on fakes with the labels they were drawn for.
    """
    return weight * ops.cross_entropy(logits, labels)


def check_class_head(experiment: Experiment, model: GanModel) -> None:
    """``train.class_loss`` needs a conditional D with raw class logits."""
    name = experiment.model.name
    spec = model.discriminator
    fix = "d_classifier: true" if name == "cdcgan" else "a D that ends in score and class logits"
    one_output = len(spec.outputs) == 1 and spec.output_value.shape == (1 + model.classes,)
    two_outputs = len(spec.outputs) == 2 and spec.output_values[1].shape == (model.classes,)
    if not model.conditional or not (one_output or two_outputs):
        shapes = ", ".join(str(value.shape) for value in spec.output_values)
        raise GxError(
            f"train.class_loss needs a conditional D whose output is its score and one logit per "
            f"class ({1 + model.classes} values), but '{name}' gives {shapes}; give it {fix}, "
            "or set train.class_loss: 0"
        )
    if ends_in_sigmoid(model) or experiment.train.loss == "bce":
        raise GxError(
            "train.class_loss reads D's raw class logits, so D cannot end in a sigmoid nor use "
            "train.loss bce; use train.loss hinge or mse with D's raw output"
        )
