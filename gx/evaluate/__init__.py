"""Measuring samples instead of eyeballing them: an evaluation classifier trained by gx, the
figures computed from its readings, and ``gx eval``.

- ``classifier``: the small CNN spec and its reading of images; ``classifier_training``,
  ``classifier_cache`` and ``real_images``: how it is trained, kept and on which images.
- ``metrics``: agreement, Fréchet distance and diversity, in numpy.
- ``quality``: ``evaluate_run``, what ``gx eval`` (and ``train.eval_at_end``) calls.
"""

from gx.evaluate.classifier import Classifier, ClassifierRecipe
from gx.evaluate.classifier_training import load_classifier, train_classifier
from gx.evaluate.quality import evaluate_run, format_table, measure

__all__ = [
    "Classifier",
    "ClassifierRecipe",
    "evaluate_run",
    "format_table",
    "load_classifier",
    "measure",
    "train_classifier",
]
