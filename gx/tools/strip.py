"""``gx strip``: the competition output, a phone number drawn digit by digit by a conditional G.

One generated digit per character, side by side, left to right, in one row without gaps: an
image H tall and H * len(number) wide. The whole strip is min-max normalised to 0..255 and saved
as an 8-bit grayscale PNG (see docs/models.md, "The phone-number strip").

Noise: ``numpy.random.default_rng(seed)`` draws one array shaped (candidates, digits, *noise),
candidate-major, so candidate 0 of every position is exactly the noise of the plain strip and a
given seed draws the same numbers on every backend.

Best of K: each position gets K candidates, and the evaluation classifier keeps the one whose
softmax probability for the intended digit is highest (ties keep the earlier candidate), so the
chosen digit is never read less confidently than the first draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gx.checkpoint import load_checkpoint
from gx.data import resolve_data_root
from gx.errors import GxError
from gx.evaluate.classifier import Classifier
from gx.evaluate.classifier_training import load_classifier
from gx.models import GanModel
from gx.outputs import check_can_write, written_atomically
from gx.run_folder import RunFolder
from gx.run_folder.sampler import Sampler

# Characters people write inside phone numbers; they are dropped before drawing.
SEPARATORS = " -"
MAX_SCALE = 64

# Pillow >= 9.1 moved the filters into Image.Resampling.
_NEAREST = getattr(Image, "Resampling", Image).NEAREST


def parse_number(text: str) -> str:
    """The digits of ``text``, with spaces and dashes dropped; anything else is an error."""
    digits = "".join(character for character in text if character not in SEPARATORS)
    if not digits:
        raise GxError("the number is empty; pass digits, e.g. gx strip 13800138000 ...")
    wrong = sorted({character for character in digits if character not in "0123456789"})
    if wrong:
        shown = ", ".join(repr(character) for character in wrong)
        raise GxError(
            f"the number '{text}' contains {shown}; use only the digits 0-9 (spaces "
            "and dashes are allowed and dropped)"
        )
    return digits


def strip_noise(
    noise_shape: tuple[int, ...], digits: int, candidates: int, seed: int
) -> np.ndarray:
    """Noise shaped (candidates, digits, *noise_shape), float32 (order in the module docstring)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((candidates, digits, *noise_shape), dtype=np.float32)


def compose(images: np.ndarray) -> np.ndarray:
    """Images (N, 1, H, W) side by side: a float array (H, N * W)."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise GxError(f"a strip needs grayscale images (N, 1, H, W), got {images.shape}")
    return np.concatenate(list(images[:, 0]), axis=1)


def quantize(strip: np.ndarray) -> np.ndarray:
    """Min-max normalise the whole strip to 0..255 and round to uint8 (a flat strip is black)."""
    strip = np.asarray(strip, np.float64)
    low, high = strip.min(), strip.max()
    if high == low:
        return np.zeros(strip.shape, np.uint8)
    return np.rint((strip - low) / (high - low) * 255).astype(np.uint8)


@dataclass
class Strip:
    """A number drawn as generated digits, one per character: what ``gx strip`` saves."""

    digits: str
    """The number's digits, separators removed."""
    images: np.ndarray
    """(digits, 1, H, W) float: the generator's image chosen at each position."""
    pixels: np.ndarray
    """(H, W * digits) uint8: the images side by side, scaled to 0..255; what is saved."""
    chosen: np.ndarray
    """(digits,) the index of the candidate kept at each position (0 with ``best_of`` 1)."""
    confidence: np.ndarray | None
    """(candidates, digits): the classifier's probability of the intended digit for every
    candidate; None without the classifier."""
    read_as: np.ndarray | None
    """(digits,) the classifier's reading of each chosen image; None without the classifier."""
    read_confidence: np.ndarray | None
    """(digits,) the classifier's probability for that reading; None without the classifier."""

    @property
    def misread(self) -> list[int]:
        """Positions the classifier reads as another digit."""
        if self.read_as is None:
            return []
        return [
            index for index, digit in enumerate(self.digits) if self.read_as[index] != int(digit)
        ]


def reading_table(strip: Strip) -> str:
    """What the classifier read at each position (``gx strip --verify``), one line each:
    '  position  3: wanted 8, read 8 (99.2%)  ok' (or MISREAD)."""
    if strip.read_as is None or strip.read_confidence is None:
        raise GxError("the strip was not read; draw it with read=True (gx strip --verify)")
    lines = []
    for position, digit in enumerate(strip.digits):
        read, confidence = strip.read_as[position], strip.read_confidence[position]
        mark = "ok" if read == int(digit) else "MISREAD"
        lines.append(
            f"  position {position + 1:>2}: wanted {digit}, read {read} "
            f"({100 * confidence:.1f}%)  {mark}"
        )
    return "\n".join(lines)


def check_drawable(model: GanModel, digits: str, source: str) -> None:
    """Refuse a model that cannot draw these digits, before anything is generated."""
    if not model.conditional:
        raise GxError(
            f"{source} holds the unconditional model '{model.name}', which cannot be "
            "told which digit to draw; use a conditional run (cgan or cdcgan)"
        )
    if model.image_shape[0] != 1:
        raise GxError(
            f"a strip is grayscale; the model '{model.name}' makes "
            f"{model.image_shape[0]}-channel images"
        )
    highest = max(int(digit) for digit in digits)
    if highest >= model.classes:
        raise GxError(
            f"the model '{model.name}' has {model.classes} classes "
            f"(0-{model.classes - 1}) and cannot draw digit {highest}; use a model "
            "trained on all ten digits"
        )


def make_strip(
    sampler: Sampler,
    digits: str,
    seed: int = 0,
    best_of: int = 1,
    classifier: Classifier | None = None,
) -> Strip:
    """Draw the strip for ``digits`` (already parsed); a classifier reads it when given one.

    ``best_of`` > 1 needs the classifier, which picks each position's candidate.
    """
    if best_of < 1:
        raise GxError(f"--best-of {best_of} must be at least 1")
    if best_of > 1 and classifier is None:
        raise GxError("--best-of needs the evaluation classifier to choose between candidates")
    labels = np.array([int(digit) for digit in digits], np.int64)
    noise = strip_noise(sampler.model.noise_shape, len(digits), best_of, seed)
    candidates = sampler.generate(
        noise.reshape(-1, *sampler.model.noise_shape), np.tile(labels, best_of)
    )
    candidates = candidates.reshape(best_of, len(digits), *candidates.shape[1:])
    chosen = np.zeros(len(digits), np.int64)
    confidence = read_as = read_confidence = None
    if classifier is not None:
        probabilities = classifier.read(candidates.reshape(-1, *candidates.shape[2:])).probabilities
        probabilities = probabilities.reshape(best_of, len(digits), -1)
        confidence = probabilities[:, np.arange(len(digits)), labels]
        chosen = confidence.argmax(axis=0)  # the first maximum: ties keep the earlier draw
        kept = probabilities[chosen, np.arange(len(digits))]
        read_as, read_confidence = kept.argmax(axis=1), kept.max(axis=1)
    images = candidates[chosen, np.arange(len(digits))]
    return Strip(
        digits, images, quantize(compose(images)), chosen, confidence, read_as, read_confidence
    )


def check_out(path: str | Path) -> None:
    """Refuse, before any work, an --out that is not a PNG name or cannot be written."""
    if Path(path).suffix.lower() != ".png":
        raise GxError(f"--out must end in .png (the strip is a PNG image), got '{path}'")
    check_can_write(path)


def save_strip(pixels: np.ndarray, path: str | Path, scale: int = 1) -> None:
    """Write an 8-bit grayscale PNG, enlarged ``scale`` times by nearest neighbour, all at once
    (gx.outputs): an existing file is replaced only by a complete strip."""
    if not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise GxError(f"--scale {scale!r} must be a whole number from 1 to {MAX_SCALE}")
    image = Image.fromarray(np.asarray(pixels, np.uint8))  # 2-D uint8: an 8-bit "L" image
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), _NEAREST)
    with written_atomically(path) as staging:
        image.save(staging, format="PNG")


def strip_from_run(
    number: str,
    run_dir: str | Path,
    backend_name: str | None = None,
    device: str = "auto",
    seed: int = 0,
    best_of: int = 1,
    read: bool = False,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
) -> Strip:
    """Everything ``gx strip`` does before saving: validate, load, draw, and optionally read.

    The classifier (trained and cached on first use) is loaded when ``best_of`` > 1 or ``read``.
    ``backend_name`` None: the backend that trained the run when installed, else the installed one.
    ``out``: where ``save_strip`` will write it, checked with the arguments, before a framework
    loads.
    """
    digits = parse_number(number)
    checkpoint = load_checkpoint(run_dir)
    check_drawable(checkpoint.model, digits, f"'{run_dir}'")
    if out is not None:
        check_out(out)
    root = dataset = None
    if best_of > 1 or read:
        data = RunFolder.of(run_dir).data_settings()
        dataset = data.dataset
        root = resolve_data_root(dataset, None if data_root is None else str(data_root), data.root)
    sampler = Sampler.from_checkpoint(checkpoint, run_dir, backend_name, device)
    classifier = None
    if dataset is not None and root is not None:
        channels, _, size = sampler.model.image_shape
        classifier = load_classifier(sampler.backend, dataset, root, size, channels=channels)
    return make_strip(sampler, digits, seed, best_of, classifier)
