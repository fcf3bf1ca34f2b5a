"""D's judgement of one batch, as every loss and term reads it.

D's first output is what the adversarial loss reads: a score per image, or, for the losses of
an autoencoder D (began, ebgan), its reconstruction of the image. Its further outputs are heads,
which the extra terms read; ``gx.losses.heads.HeadLayout`` says which output is which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gx.backends.base import Tensor


@dataclass
class Judgement:
    images: Tensor  # what D judged: a real batch, or G's fakes
    score: Tensor  # D's first output: its scores, or its reconstruction of the images
    class_logits: Tensor | None = None  # (N, classes[+1]): AC-GAN's, SGAN's, InfoGAN's head
    codes: tuple[Tensor, ...] = ()  # InfoGAN: D's estimate of each continuous code of G's
    embedding: Tensor | None = None  # (N, D): the features the pull-away term reads
