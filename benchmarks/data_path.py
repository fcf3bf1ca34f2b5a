"""The classic data path against gx's in-memory batches, on the 10k MNIST test digits (torch CPU).

Classic: a per-sample Dataset that turns each uint8 digit into a PIL image, then into a float
tensor scaled to [0, 1] and normalised with mean 0.5 and std 0.5 (torchvision's MNIST, ToTensor and
Normalize, written out with numpy since torchvision is not installed), batched by
torch.utils.data.DataLoader(batch_size=64, shuffle=True) with num_workers 0 and 2.

gx: the split decoded once into one float32 array (gx.data.load_dataset), copied to the device
once, and every batch a gather of seeded indices (backend.take), as ``gx run`` does.

Two measurements, in images/s:
1. one epoch of batches and nothing else;
2. one cdcgan training epoch (gx's trainer, torch CPU) fed by each path.

    python benchmarks/data_path.py                       # data root: --data-root, $GX_DATA_ROOT,
    python benchmarks/data_path.py --train-batches 40    # or ../shared/data/mnist

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from gx.backends import get_backend
from gx.config import load_experiment, model_for
from gx.data import batch_indices, ensure_files, load_dataset, read_idx, resolve_data_root
from gx.data.registry import dataset_info
from gx.train.gan import GanTrainer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "mnist"
BATCH = 64


class MnistDigits(Dataset):
    """torchvision's MNIST dataset: uint8 digits in memory, one PIL image per item."""

    def __init__(self, digits: np.ndarray, labels: np.ndarray) -> None:
        self.digits, self.labels = digits, labels

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.digits[index], mode="L")
        return to_normalized_tensor(image), int(self.labels[index])


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """ToTensor then Normalize((0.5,), (0.5,)): (1, H, W) float32 in [-1, 1]."""
    array = np.array(image, dtype=np.float32)[np.newaxis] / np.float32(255)
    return torch.from_numpy((array - np.float32(0.5)) / np.float32(0.5))


def classic_loader(digits: np.ndarray, labels: np.ndarray, workers: int) -> DataLoader:
    return DataLoader(
        MnistDigits(digits, labels), batch_size=BATCH, shuffle=True, num_workers=workers
    )


def gx_batches(backend: Any, images: Any, labels: Any, count: int, seed: int) -> Iterator[tuple]:
    for indices in batch_indices(count, BATCH, seed, 0):
        yield backend.take(images, indices), backend.take(labels, indices)


def timed_epoch(batches: Iterable[tuple], trainer: GanTrainer | None, limit: int | None) -> dict:
    """Images/s over one pass of ``batches`` (training on each when a trainer is given)."""
    images = steps = 0
    began = time.perf_counter()
    for batch_images, batch_labels in batches:
        if trainer is not None:
            trainer.step(batch_images, batch_labels)
        images += len(batch_images)
        steps += 1
        if limit is not None and steps >= limit:
            break
    seconds = time.perf_counter() - began
    return {
        "images": images,
        "batches": steps,
        "seconds": seconds,
        "images_per_s": images / seconds,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        default=None,
        help=f"folder with the MNIST test idx files (default: $GX_DATA_ROOT, else {DEFAULT_ROOT})",
    )
    parser.add_argument(
        "--train-batches",
        type=int,
        default=None,
        help="train on only this many batches per path (default: a whole epoch)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for training (default: torch's)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = resolve_data_root("mnist", args.data_root, str(DEFAULT_ROOT))
    images_file, labels_file = dataset_info("mnist").parts["test"]
    paths = ensure_files("mnist", root, "test", download=False)
    digits, labels = read_idx(paths[images_file.name]), read_idx(paths[labels_file.name])

    backend = get_backend("torch", "cpu")
    experiment = load_experiment(REPO / "experiments" / "cdcgan.yaml")
    model = model_for(experiment)

    began = time.perf_counter()
    images_np, labels_np = load_dataset("mnist", root, "test", 28, download=False)
    gx_images, gx_labels = backend.tensor(images_np), backend.tensor(labels_np)
    gx_setup_s = time.perf_counter() - began

    def sources() -> dict[str, Iterable[tuple]]:
        return {
            "classic, num_workers=0": classic_loader(digits, labels, 0),
            "classic, num_workers=2": classic_loader(digits, labels, 2),
            "gx, in-memory on device": gx_batches(
                backend, gx_images, gx_labels, len(images_np), experiment.seed
            ),
        }

    results: dict[str, Any] = {
        "gx_setup_s": gx_setup_s,
        "batch": BATCH,
        "backend": backend.describe(),
        "batches_only": {},
        "cdcgan_epoch": {},
    }
    for name, batches in sources().items():
        results["batches_only"][name] = timed_epoch(batches, None, None)
        print(
            f"batches only   {name:<26} {results['batches_only'][name]['images_per_s']:>10,.0f} "
            "images/s",
            flush=True,
        )

    warm = GanTrainer(backend, model, experiment)  # first steps pay for allocation and caches
    timed_epoch(gx_batches(backend, gx_images, gx_labels, len(images_np), 1), warm, 3)
    for name, batches in sources().items():
        trainer = GanTrainer(backend, model, experiment)
        results["cdcgan_epoch"][name] = timed_epoch(batches, trainer, args.train_batches)
        print(
            f"cdcgan training {name:<25} {results['cdcgan_epoch'][name]['images_per_s']:>10,.0f} "
            "images/s",
            flush=True,
        )
    print(f"(gx's one-time decode and copy to the device: {gx_setup_s:.2f} s, not in the figures)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
