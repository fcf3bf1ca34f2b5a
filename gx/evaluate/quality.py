"""``gx eval``: how good a trained generator's samples are, measured by the evaluation classifier.

For n generated images (labels spread evenly over the classes for a conditional model) and up
to n real images of the dataset's test split (of all its images for an image folder), it reports
agreement (conditional models only), Fréchet distance and diversity, defined in
gx/evaluate/metrics.py, and writes them to ``eval.json`` in the run folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gx.checkpoint import load_checkpoint
from gx.data import load_dataset, resolve_data_root
from gx.errors import GxError
from gx.evaluate import metrics
from gx.evaluate.classifier import Classifier, Reading
from gx.evaluate.classifier_training import load_classifier
from gx.evaluate.real_images import real_split
from gx.models import GanModel
from gx.outputs import written_atomically
from gx.run_folder import RunFolder
from gx.run_folder.sampler import SAMPLE_BATCH, Sampler


def measure(
    classifier: Classifier,
    generated: Reading,
    requested: np.ndarray | None,
    real: Reading,
    real_labels: np.ndarray,
) -> dict[str, Any]:
    """Every figure from classifier readings of generated and real images.

    ``requested`` holds the labels the images were generated for (None: unconditional). Only
    labels the classifier knows count towards agreement.
    """
    classes = classifier.spec.output_value.shape[0]
    result: dict[str, Any] = {"agreement": None, "agreement_per_class": None}
    if requested is not None:
        known = requested < classes
        overall, per_class = metrics.agreement(
            generated.predictions[known], requested[known], classes
        )
        result["agreement"], result["agreement_per_class"] = overall, per_class
    result["frechet_distance"] = metrics.feature_frechet_distance(real.features, generated.features)
    result["diversity"] = metrics.diversity(
        generated.features, real.features, requested, real_labels if requested is not None else None
    )
    result["class_histogram"] = np.bincount(generated.predictions, minlength=classes).tolist()
    return result


def generate_and_read(
    sampler: Sampler, classifier: Classifier, count: int, seed: int
) -> tuple[Reading, np.ndarray | None]:
    """Read ``count`` generated images batch by batch, keeping only logits and features.

    Noise comes from numpy.random.default_rng(seed), a batch at a time; labels are 0, 1, ...,
    classes - 1, repeated.
    """
    model = sampler.model
    rng = np.random.default_rng(seed)
    requested = (np.arange(count) % model.classes).astype(np.int64) if model.conditional else None
    logits, features = [], []
    for start in range(0, count, SAMPLE_BATCH):
        size = min(SAMPLE_BATCH, count - start)
        noise = rng.standard_normal((size, *model.noise_shape), dtype=np.float32)
        labels = requested[start : start + size] if requested is not None else None
        reading = classifier.read(sampler.generate(noise, labels))
        logits.append(reading.logits)
        features.append(reading.features)
    return Reading(np.concatenate(logits), np.concatenate(features)), requested


def _check_model(model: GanModel, count: int) -> None:
    channels, height, width = model.image_shape
    if channels not in (1, 3) or height != width:
        raise GxError(
            f"the evaluation classifier reads square grayscale or RGB images; this model "
            f"makes {model.image_shape}"
        )
    if count < 2:
        raise GxError(
            f"--n {count} is too few: the Fréchet distance needs at least 2 images; "
            "use e.g. --n 10000"
        )


def evaluate_run(
    run_dir: str | Path,
    n: int = 10000,
    backend_name: str | None = None,
    device: str = "auto",
    seed: int = 0,
    data_root: str | Path | None = None,
) -> dict[str, Any]:
    """Measure a run's generator and write RUN/eval.json; returns what was written.

    ``backend_name`` None: the backend that trained the run when installed, else the installed one.
    """
    began = time.perf_counter()
    # Everything that can be checked without a framework is, before one loads.
    checkpoint = load_checkpoint(run_dir)
    model = checkpoint.model
    _check_model(model, n)
    folder = RunFolder.of(run_dir)
    data = folder.data_settings()
    dataset = data.dataset
    root = resolve_data_root(dataset, None if data_root is None else str(data_root), data.root)
    channels, _, size = model.image_shape
    split = real_split(dataset)
    real_images, real_labels = load_dataset(dataset, root, split, size, channels=channels)
    with written_atomically(folder.evaluation, "eval.json") as staging:
        sampler = Sampler.from_checkpoint(checkpoint, run_dir, backend_name, device)
        backend = sampler.backend
        classifier = load_classifier(backend, dataset, root, size, channels=channels)
        chosen = np.random.default_rng([seed, 1]).permutation(len(real_images))[:n]
        real = classifier.read(real_images[chosen])
        generated, requested = generate_and_read(sampler, classifier, n, seed)

        result: dict[str, Any] = {
            "run": str(folder.path),
            "model": model.name,
            "step": sampler.step,
            "n": n,
            "seed": seed,
            "real_images": f"{len(chosen)} from the {dataset} {split} split",
            "backend": backend.describe(),
            "classifier": {
                key: classifier.info.get(key)
                for key in ("path", "image_size", "held_out_accuracy", "split", "train_images")
            },
            **measure(classifier, generated, requested, real, real_labels[chosen]),
        }
        result["seconds"] = round(time.perf_counter() - began, 2)
        staging.write_text(json.dumps(result, indent=1))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The figures of ``evaluate_run`` as a small text table."""

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    rows = [
        ("run", result["run"]),
        ("model (step)", f"{result['model']} ({result['step']})"),
        ("generated images", str(result["n"])),
        ("real images", result["real_images"]),
        ("classifier held-out accuracy", percent(result["classifier"]["held_out_accuracy"])),
        ("agreement (read as requested)", percent(result["agreement"])),
        ("Fréchet distance (features)", f"{result['frechet_distance']:.3f}"),
        ("diversity (generated / real)", f"{result['diversity']:.3f}"),
    ]
    if result["agreement_per_class"] is not None:
        rows.append(
            (
                "agreement per class",
                " ".join(
                    f"{digit}:{percent(value)}"
                    for digit, value in enumerate(result["agreement_per_class"])
                    if value is not None
                ),
            )
        )
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
