"""Write the tinted-digits image folder: MNIST test digits as RGB PNGs, one colour per class.

    python benchmarks/tinted_digits.py OUT [--per-class N] [--mnist ../shared/data/mnist]

OUT/<digit>/<index>.png, the strokes in the class's colour on black: the colour data of the
image-folder record (docs/own-data.md) and of the tests, which write it the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import write_digit_folder  # noqa: E402  (the tests' own writer, one definition)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--per-class", type=int, default=10000, help="digits per class (at most; default: all)"
    )
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--gray", action="store_true", help="grayscale PNGs instead")
    args = parser.parse_args()
    written = write_digit_folder(args.mnist, args.out, args.per_class, tint=not args.gray)
    print(f"{len(written)} images in {args.out}")


if __name__ == "__main__":
    main()
