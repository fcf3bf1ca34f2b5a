"""The YAML value checks shared by experiment files, specs and model options."""

from __future__ import annotations

from gx.values import close_matches, closest, is_number, is_whole


def test_whole_numbers_and_numbers_refuse_bools_and_text():
    assert [is_whole(v) for v in (3, 0, -2, True, 3.0, "3", None)] == [
        True, True, True, False, False, False, False,
    ]  # fmt: skip
    assert [is_number(v) for v in (3, 2.5, float("inf"), False, "2.5")] == [
        True, True, True, False, False,
    ]  # fmt: skip


def test_closest_names_a_typo_and_nothing_for_a_stranger():
    assert closest("batchsize", ["batch_size", "epochs"]) == "batch_size"
    assert closest("lnear", ("linear", "conv2d")) == "linear"
    assert closest("zzz", ["batch_size", "epochs"]) is None


def test_close_matches_lists_the_closest_first():
    assert close_matches("elu", ["leaky_relu", "relu", "tanh", "gelu"]) == ["relu", "gelu"]
    assert close_matches("elu", ["relu", "gelu"], 1) == ["relu"]
