"""Sample quality, measured: train the conditional models, then gx eval and gx strip on each.

For every model and backend asked for:

1. train it with its experiment recipe (experiments/<model>.yaml: same network, loss, optimizer,
   batch size and step order) for ``--epochs`` epochs, on the train split when it is on disk,
   else on the 10,000-image test split (these machines have only that one). The defaults are
   for the test split: cdcgan 60 epochs (9,360 steps, as many as its recipe's 10 epochs of the
   60k train split), cgan 300 (46,800 steps, half its recipe's);
2. ``gx eval`` on ``--n`` generated images: agreement (share read as the requested digit),
   Fréchet distance in the classifier's feature space, diversity (generated / real spread);
3. ``gx strip --best-of K --verify`` on ``--numbers`` random 11-digit numbers: how many strips,
   and digits, the classifier reads back correctly.

The first strip of the first model is saved as docs/strip.png (enlarged 3 times). Targets: at
least 98% of generated digits read as requested, every strip digit read back correctly.

    python benchmarks/quality.py --models cdcgan --backends torch --epochs cdcgan=10
    python benchmarks/quality.py                      # cdcgan and cgan, torch and jittor
    python benchmarks/quality.py --runs RUN [RUN ...] --best-of 1   # finished runs, no training

The last line printed is one JSON object with every figure (also written to WORK/quality.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gx.config import load_experiment
from gx.data import resolve_data_root
from gx.evaluate import evaluate_run, load_classifier
from gx.evaluate.real_images import train_split_present
from gx.run_folder.sampler import Sampler
from gx.tools.strip import make_strip, save_strip
from gx.train.run import RunOptions, run_experiment

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EPOCHS = {"cdcgan": 60, "cgan": 300}
AGREEMENT_TARGET = 0.98
DIGITS_PER_NUMBER = 11


def parse_epochs(text: str) -> dict[str, int]:
    epochs = dict(DEFAULT_EPOCHS)
    for item in filter(None, text.split(",")):
        model, _, count = item.partition("=")
        epochs[model.strip()] = int(count)
    return epochs


def train(
    model: str, backend: str, device: str, epochs: int, data_root: Path, folder: Path
) -> tuple[float, int]:
    """Train into ``folder`` (reused when a finished run is already there); (seconds, steps)."""
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
        return summary.get("benchmark_train_seconds", float("nan")), summary["steps"]
    split = "train" if train_split_present("mnist", data_root) else "test"
    experiment = load_experiment(
        REPO / "experiments" / f"{model}.yaml", [f"data.split={split}", f"train.epochs={epochs}"]
    )
    began = time.perf_counter()
    result = run_experiment(
        experiment,
        RunOptions(
            backend=backend,
            device=device,
            data_root=str(data_root),
            out=str(folder),
            progress=False,
        ),
    )
    seconds = time.perf_counter() - began
    summary = json.loads((folder / "summary.json").read_text())
    summary["benchmark_train_seconds"] = seconds
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return seconds, result.steps


def finished_run(folder: Path) -> tuple[str, str, Path, int]:
    """(experiment, backend, folder, epochs) of a run ``gx run`` finished."""
    summary = json.loads((folder / "summary.json").read_text())
    return summary["experiment"], summary["backend"]["backend"], folder, summary["epoch"]


def random_numbers(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(str(d) for d in rng.integers(0, 10, DIGITS_PER_NUMBER)) for _ in range(count)]


def strips(
    run: Path,
    backend: str,
    device: str,
    data_root: Path,
    numbers: list[str],
    best_of: int,
    save_first: Path | None,
) -> dict[str, Any]:
    sampler = Sampler.from_run(run, backend, device)
    classifier = load_classifier(sampler.backend, "mnist", data_root, sampler.model.image_shape[-1])
    correct_strips = correct_digits = 0
    misread: list[str] = []
    for index, number in enumerate(numbers):
        strip = make_strip(sampler, number, seed=index, best_of=best_of, classifier=classifier)
        if index == 0 and save_first is not None:
            save_strip(strip.pixels, save_first, scale=3)
        wrong = strip.misread
        correct_digits += len(number) - len(wrong)
        correct_strips += not wrong
        if wrong:
            read = "".join(str(digit) for digit in strip.read_as)
            misread.append(f"{number} read as {read}")
    return {
        "strips_correct": correct_strips,
        "strips": len(numbers),
        "digits_correct": correct_digits,
        "digits": len(numbers) * DIGITS_PER_NUMBER,
        "misread": misread,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cdcgan", "cgan"])
    parser.add_argument("--backends", nargs="+", default=["torch", "jittor"])
    parser.add_argument(
        "--epochs",
        default="",
        help=f"per model, e.g. cdcgan=60,cgan=300 (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=10000, help="images for gx eval")
    parser.add_argument("--numbers", type=int, default=20, help="random 11-digit strips")
    parser.add_argument("--best-of", type=int, default=8)
    parser.add_argument(
        "--data-root",
        default=None,
        help="MNIST folder (else $GX_DATA_ROOT or ../shared/data/mnist)",
    )
    parser.add_argument("--work", default="runs/quality", help="run folders go here")
    parser.add_argument(
        "--strip-image", default=None, help="save the first strip measured here as a PNG"
    )
    parser.add_argument(
        "--runs", nargs="*", default=[], help="finished run folders to measure instead of training"
    )
    args = parser.parse_args()

    data_root = resolve_data_root(
        "mnist", args.data_root or str(REPO.parent / "shared" / "data" / "mnist"), None
    )
    epochs = parse_epochs(args.epochs)
    numbers = random_numbers(args.numbers, seed=2024)
    work = Path(args.work)
    figures = []
    save_first = Path(args.strip_image) if args.strip_image else None
    planned = [
        (model, backend, work / f"{model}-{backend}-{epochs[model]}ep", epochs[model])
        for model in args.models
        for backend in args.backends
    ]
    if args.runs:
        planned = [finished_run(Path(run)) for run in args.runs]
    for model, backend, run, model_epochs in planned:
        seconds, steps = train(model, backend, args.device, model_epochs, data_root, run)
        began = time.perf_counter()
        evaluation = evaluate_run(run, args.n, backend, args.device, 0, data_root)
        eval_seconds = time.perf_counter() - began
        read_back = strips(run, backend, args.device, data_root, numbers, args.best_of, save_first)
        save_first = None
        figures.append(
            {
                "model": model,
                "backend": backend,
                "epochs": model_epochs,
                "steps": steps,
                "train_seconds": round(seconds, 1),
                "eval_seconds": round(eval_seconds, 1),
                "agreement": evaluation["agreement"],
                "agreement_per_class": evaluation["agreement_per_class"],
                "frechet_distance": evaluation["frechet_distance"],
                "diversity": evaluation["diversity"],
                "classifier_held_out_accuracy": evaluation["classifier"]["held_out_accuracy"],
                **read_back,
            }
        )
        print(report_line(figures[-1]), flush=True)
    print()
    print(table(figures, args.best_of))
    work.mkdir(parents=True, exist_ok=True)
    (work / "quality.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))


def report_line(row: dict[str, Any]) -> str:
    return (
        f"{row['model']}/{row['backend']}: {row['steps']} steps in {row['train_seconds']} s, "
        f"agreement {100 * row['agreement']:.2f}%, FD {row['frechet_distance']:.2f}, "
        f"diversity {row['diversity']:.3f}, strips {row['strips_correct']}/{row['strips']}"
    )


def table(rows: list[dict[str, Any]], best_of: int) -> str:
    header = (
        f"{'model':<7} {'backend':<7} {'epochs':>6} {'steps':>6} {'train s':>8} "
        f"{'agree %':>8} {'FD':>7} {'divers.':>7} {'strips ok':>9} {'digits ok':>9}  target"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        met = row["agreement"] >= AGREEMENT_TARGET and row["digits_correct"] == row["digits"]
        lines.append(
            f"{row['model']:<7} {row['backend']:<7} {row['epochs']:>6} {row['steps']:>6} "
            f"{row['train_seconds']:>8.0f} {100 * row['agreement']:>8.2f} "
            f"{row['frechet_distance']:>7.2f} {row['diversity']:>7.3f} "
            f"{row['strips_correct']:>4}/{row['strips']:<4} "
            f"{row['digits_correct']:>4}/{row['digits']:<4}  {'met' if met else 'MISSED'}"
        )
    lines.append(
        f"strips: best of {best_of} per digit, read back by the evaluation classifier; "
        f"targets: agreement >= {100 * AGREEMENT_TARGET:.0f}%, every strip digit correct"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
