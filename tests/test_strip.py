"""gx strip: geometry, determinism, best-of-K, verification, every user error, and Jittor.

Checkpoints come from two-step ``gx run``s: a barely trained generator is enough to check
geometry and plumbing. The passing ``--verify`` case uses a "lookup" generator whose output for
label d is a real digit d, so its strip is known to read back correctly.

The session fixtures (runs, data copy, classifier) and helpers live in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import clearest_digits, gx, lookup_run, max_difference, png

from gx.errors import GxError
from gx.parity.agreement import agrees
from gx.run_folder.sampler import Sampler, load_generator
from gx.tools.strip import compose, make_strip, parse_number, quantize, strip_noise

REPO_ROOT = Path(__file__).resolve().parents[1]
NUMBER = "13800138000"


# -- parsing and composition --------------------------------------------------------------------


def test_parse_number_drops_spaces_and_dashes():
    assert parse_number("138-0013 8000") == "13800138000"
    assert parse_number("0") == "0"


@pytest.mark.parametrize(
    "text, message",
    [
        ("12a3", "contains 'a'"),
        ("1.5", "contains '.'"),
        ("", "empty"),
        (" - -", "empty"),
        ("+86 138", "contains '+'"),
    ],
)
def test_parse_number_refuses(text, message):
    with pytest.raises(GxError) as caught:
        parse_number(text)
    assert message in str(caught.value)


def test_compose_and_quantize():
    images = np.stack([np.full((1, 2, 2), value, np.float32) for value in (-0.5, 0.0, 0.5)])
    strip = compose(images)
    assert strip.shape == (2, 6)
    assert quantize(strip)[0].tolist() == [0, 0, 128, 128, 255, 255]
    assert quantize(np.zeros((2, 4))).max() == 0  # a flat strip is black, not a division by 0


def test_noise_candidate_zero_is_the_plain_strip():
    plain = strip_noise((100, 1, 1), 11, 1, seed=5)
    several = strip_noise((100, 1, 1), 11, 8, seed=5)
    assert several.shape == (8, 11, 100, 1, 1) and several.dtype == np.float32
    np.testing.assert_array_equal(several[0], plain[0])


# -- the command ----------------------------------------------------------------------------------


def test_cgan_strip_geometry_and_scale(cgan_run, tmp_path):
    code, output = gx(
        "strip", "138-0013 8000", "--checkpoint", cgan_run, "--out", tmp_path / "result.png"
    )
    assert code == 0, output
    image, pixels = png(tmp_path / "result.png")
    assert image.mode == "L" and image.size == (32 * 11, 32)
    assert pixels.min() == 0 and pixels.max() == 255
    code, output = gx(
        "strip", NUMBER, "--checkpoint", cgan_run, "--scale", "3", "--out", tmp_path / "big.png"
    )
    assert code == 0, output
    big_image, big = png(tmp_path / "big.png")
    assert big_image.size == (32 * 11 * 3, 32 * 3)
    np.testing.assert_array_equal(big, np.repeat(np.repeat(pixels, 3, axis=0), 3, axis=1))


def test_cdcgan_strip_geometry(cdcgan_run, tmp_path):
    code, output = gx(
        "strip",
        "0123456789",
        "--checkpoint",
        cdcgan_run,
        "--out",
        tmp_path / "digits" / "strip.png",
    )
    assert code == 0, output
    image, pixels = png(tmp_path / "digits" / "strip.png")
    assert image.mode == "L" and image.size == (28 * 10, 28)
    assert pixels.min() == 0 and pixels.max() == 255


def test_same_seed_same_bytes_other_seed_differs(cgan_run, tmp_path):
    outputs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        code, text = gx(
            "strip",
            NUMBER,
            "--checkpoint",
            cgan_run,
            "--seed",
            seed,
            "--out",
            tmp_path / f"{name}.png",
        )
        assert code == 0, text
        outputs.append((tmp_path / f"{name}.png").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_best_of_never_reads_worse_than_the_first_draw(cdcgan_run, classifier28):
    sampler = Sampler.from_run(cdcgan_run, "torch", "cpu")
    plain = make_strip(sampler, NUMBER, seed=3, best_of=1, classifier=classifier28)
    best = make_strip(sampler, NUMBER, seed=3, best_of=8, classifier=classifier28)
    positions = np.arange(len(NUMBER))
    assert best.confidence.shape == (8, len(NUMBER))
    # candidate 0 is the plain strip's draw, and the kept one is read at least as confidently;
    # the same networks on 8 candidates at once instead of 1: another batch size may block the
    # kernels' sums differently, float32 rounding of a few layers (1e-5 is 160 units of it)
    np.testing.assert_allclose(best.confidence[0], plain.confidence[0], rtol=1e-5, atol=1e-7)
    assert np.all(best.confidence[best.chosen, positions] >= best.confidence[0])
    np.testing.assert_array_equal(best.chosen, best.confidence.argmax(axis=0))
    assert np.any(best.chosen > 0)
    kept_first = best.chosen == 0
    # images in [-1, 1] from the same generator at another batch size (as above)
    np.testing.assert_allclose(best.images[kept_first], plain.images[kept_first], atol=1e-6)


def test_verify_fails_on_misread_digits(cdcgan_run, classifier28, data_root, tmp_path):
    code, output = gx(
        "strip",
        "0123456789",
        "--checkpoint",
        cdcgan_run,
        "--verify",
        "--data-root",
        data_root,
        "--out",
        tmp_path / "s.png",
    )
    assert code == 1
    lines = [line for line in output.splitlines() if line.strip().startswith("position")]
    assert len(lines) == 10 and "MISREAD" in output and "digits misread" in output
    assert (tmp_path / "s.png").is_file()  # saved either way


@pytest.mark.slow
def test_verify_and_best_of_pass_on_a_generator_that_draws_real_digits(
    classifier28, data_root, tmp_path
):
    run = lookup_run(tmp_path / "lookup", clearest_digits(classifier28, data_root))
    code, output = gx(
        "strip",
        NUMBER,
        "--checkpoint",
        run,
        "--verify",
        "--best-of",
        "2",
        "--data-root",
        data_root,
        "--out",
        tmp_path / "s.png",
    )
    assert code == 0, output
    lines = [line for line in output.splitlines() if line.strip().startswith("position")]
    assert len(lines) == 11 and all(line.endswith("ok") for line in lines)
    assert "MISREAD" not in output


# -- user errors: exit 2, one message, nothing written ----------------------------------------


@pytest.fixture
def five_class_run(tmp_path) -> Path:
    return lookup_run(tmp_path / "five", np.zeros((5, 1, 28, 28), np.float32))


@pytest.mark.parametrize(
    "case, number, message",
    [
        ("letters", "12a4", "contains 'a'"),
        ("empty", "", "the number is empty"),
        ("separators only", " - ", "the number is empty"),
        ("unconditional", NUMBER, "unconditional model 'gan'"),
        ("missing", NUMBER, "does not exist"),
        ("few classes", "1234567", "has 5 classes (0-4) and cannot draw digit 7"),
    ],
)
def test_errors_exit_2_and_leave_files_alone(case, number, message, request, tmp_path):
    checkpoint = {
        "unconditional": lambda: request.getfixturevalue("gan_run"),
        "missing": lambda: tmp_path / "no-such-run",
        "few classes": lambda: request.getfixturevalue("five_class_run"),
    }.get(case, lambda: request.getfixturevalue("cgan_run"))()
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    for out in (existing, tmp_path / "new.png"):
        code, output = gx("strip", number, "--checkpoint", checkpoint, "--out", out)
        assert code == 2
        lines = output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "new.png").exists()


# -- Jittor --------------------------------------------------------------------------------------


@pytest.mark.jittor
@pytest.mark.cross_framework
def test_torch_checkpoint_sampled_on_jittor_gives_the_same_strip(cgan_run):
    strips = [
        make_strip(Sampler.from_run(cgan_run, backend, "cpu"), NUMBER, seed=11)
        for backend in ("torch", "jittor")
    ]
    # PyTorch float64 draws the same strip: the floor of the float32 images (gx.parity.agreement)
    exact = make_strip(Sampler(*load_generator(cgan_run, "torch", "cpu", "float64"), 0), NUMBER, 11)
    torch_images, jittor_images = (compose(strip.images) for strip in strips)
    floor = max_difference(torch_images, compose(exact.images))
    assert agrees(max_difference(jittor_images, torch_images), floor)
    assert np.abs(strips[1].pixels.astype(int) - strips[0].pixels.astype(int)).max() <= 1
