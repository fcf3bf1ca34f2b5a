"""The experiment file: defaults, round trips, overrides, and every kind of user mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from gx.config import (
    Experiment,
    Milestone,
    OptimizerSettings,
    experiment_from_dict,
    load_experiment,
)
from gx.errors import GxError

MINIMAL = {"name": "cdcgan", "model": {"name": "cdcgan"}}

CUSTOM_MODEL = {
    "name": "custom",
    "generator": {"input": [100], "layers": [{"linear": {"out": 784}}]},
    "discriminator": {"input": [1, 28, 28], "layers": [{"flatten": {}}]},
}


def write(tmp_path: Path, text: str, name: str = "cdcgan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def from_dict(data: dict) -> Experiment:
    return experiment_from_dict(data, "cdcgan.yaml")


def with_section(section: str, values: dict) -> dict:
    return {**MINIMAL, section: values}


def error_of(data: dict) -> str:
    with pytest.raises(GxError) as caught:
        from_dict(data)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cdcgan.yaml: ")
    return message


# --- defaults and round trips -----------------------------------------------------------------


def test_minimal_file_gets_documented_defaults():
    experiment = from_dict(MINIMAL)
    assert experiment.name == "cdcgan"
    assert experiment.seed == 0
    assert experiment.model.name == "cdcgan"
    assert experiment.model.options == {}
    assert experiment.model.generator is None and experiment.model.init is None
    data = experiment.data
    assert (data.dataset, data.root, data.split, data.image_size, data.download) == (
        "mnist",
        None,
        "train",
        28,
        True,
    )
    train = experiment.train
    assert (train.epochs, train.max_steps, train.batch_size) == (1, None, 64)
    assert (train.order, train.loss, train.d_steps, train.real_label) == ("d_then_g", "bce", 1, 1.0)
    assert (train.sample_every, train.checkpoint_every, train.eval_at_end) == (200, 1000, False)
    adam = OptimizerSettings(kind="adam", lr=0.0002, betas=(0.5, 0.999), eps=1e-8, momentum=0.0)
    assert experiment.optimizer.generator == adam
    assert experiment.optimizer.discriminator == adam
    assert experiment.optimizer.milestones == ()


def test_round_trip_through_to_dict_and_yaml():
    experiment = from_dict(
        {
            **MINIMAL,
            "seed": 3,
            "model": {"name": "dcgan", "options": {"bn_eps": 0.8}, "init": "dcgan"},
            "data": {"dataset": "fashion_mnist", "root": "/data", "split": "both"},
            "train": {"epochs": 5, "max_steps": 10, "real_label": 0.9, "loss": "mse"},
            "optimizer": {
                "generator": {"kind": "sgd", "lr": 0.01, "momentum": 0.9},
                "milestones": [{"epoch": 2, "factor": 0.5}, {"epoch": 4, "factor": 0.1}],
            },
        }
    )
    plain = experiment.to_dict()
    assert experiment_from_dict(plain, "run") == experiment
    # The resolved config is written with safe_dump, so it must be plain YAML data.
    assert experiment_from_dict(yaml.safe_load(yaml.safe_dump(plain)), "run") == experiment
    assert plain["optimizer"]["generator"]["betas"] == [0.5, 0.999]
    assert plain["optimizer"]["milestones"][1] == {"epoch": 4, "factor": 0.1}
    assert experiment.optimizer.milestones[0] == Milestone(epoch=2, factor=0.5)


def test_custom_model_round_trip():
    experiment = from_dict({**MINIMAL, "model": CUSTOM_MODEL})
    assert experiment.model.generator == CUSTOM_MODEL["generator"]
    assert from_dict(experiment.to_dict()) == experiment


def test_partial_optimizer_mapping_keeps_other_defaults():
    experiment = from_dict(with_section("optimizer", {"discriminator": {"lr": 0.001}}))
    discriminator = experiment.optimizer.discriminator
    assert discriminator.lr == 0.001
    assert discriminator.kind == "adam"
    assert (discriminator.betas, discriminator.eps) == ((0.5, 0.999), 1e-8)
    assert experiment.optimizer.generator.lr == 0.0002


def test_ints_are_accepted_as_floats():
    experiment = from_dict(with_section("train", {"real_label": 1}))
    assert experiment.train.real_label == 1.0 and isinstance(experiment.train.real_label, float)


def test_section_with_everything_commented_out_reads_as_defaults():
    # "train:" followed only by comments loads as train: null.
    assert from_dict(with_section("train", None)).train == from_dict(MINIMAL).train


# --- the file itself --------------------------------------------------------------------------


def test_load_file_with_overrides(tmp_path):
    path = write(
        tmp_path,
        """\
        name: cdcgan
        model: {name: cdcgan}
        train:
          epochs: 2
        """,
    )
    experiment = load_experiment(
        path,
        [
            "train.epochs=5",
            "optimizer.generator.lr=1e-3",
            "optimizer.generator.betas=[0.5, 0.99]",
            "data.root=/tmp/x",
            "model.options.bn_eps=0.8",
            "train.max_steps=3",
            "data.download=false",
        ],
    )
    assert experiment.train.epochs == 5
    assert experiment.optimizer.generator.lr == 0.001
    assert experiment.optimizer.generator.betas == (0.5, 0.99)
    assert experiment.optimizer.discriminator.lr == 0.0002
    assert experiment.data.root == "/tmp/x"
    assert experiment.model.options == {"bn_eps": 0.8}
    assert experiment.train.max_steps == 3
    assert experiment.data.download is False


def test_override_to_null_and_whole_lists(tmp_path):
    path = write(
        tmp_path,
        """\
        name: cdcgan
        model: {name: cdcgan}
        data: {root: /data}
        train: {max_steps: 10}
        """,
    )
    experiment = load_experiment(
        path,
        [
            "data.root=null",
            "train.max_steps=",
            "optimizer.milestones=[{epoch: 3, factor: 0.1}]",
        ],
    )
    assert experiment.data.root is None
    assert experiment.train.max_steps is None
    assert experiment.optimizer.milestones == (Milestone(epoch=3, factor=0.1),)


def test_override_does_not_leak_through_yaml_alias(tmp_path):
    path = write(
        tmp_path,
        """\
        name: cdcgan
        model: {name: cdcgan}
        optimizer:
          generator: &adam {lr: 0.001}
          discriminator: *adam
        """,
    )
    experiment = load_experiment(path, ["optimizer.generator.lr=0.005"])
    assert experiment.optimizer.generator.lr == 0.005
    assert experiment.optimizer.discriminator.lr == 0.001


def test_override_inside_free_mapping_of_custom_model(tmp_path):
    path = write(tmp_path, "name: c\nmodel: {name: custom}\n")
    experiment = load_experiment(
        path,
        [
            "model.generator={layers: []}",
            "model.discriminator.layers=[]",
        ],
    )
    assert experiment.model.generator == {"layers": []}
    assert experiment.model.discriminator == {"layers": []}


def test_override_unknown_key_suggests_nearest(tmp_path):
    path = write(tmp_path, "name: cdcgan\nmodel: {name: cdcgan}\n")
    suggestion = r"unknown key 'train\.epoch'; did you mean 'train\.epochs'\?"
    with pytest.raises(GxError, match=suggestion):
        load_experiment(path, ["train.epoch=5"])
    # The message names the first part of the path that does not exist.
    suggestion = (
        r"\(--set optimizer\.generater\.lr=5\): unknown key 'optimizer\.generater'; "
        r"did you mean 'optimizer\.generator'\?"
    )
    with pytest.raises(GxError, match=suggestion):
        load_experiment(path, ["optimizer.generater.lr=5"])
    with pytest.raises(GxError, match=r"'train\.epochs' has no keys below it"):
        load_experiment(path, ["train.epochs.x=5"])


def test_override_without_equals_shows_expected_form(tmp_path):
    path = write(tmp_path, "name: cdcgan\nmodel: {name: cdcgan}\n")
    with pytest.raises(GxError, match=r"expected KEY=VALUE, e\.g\. --set train\.epochs=5"):
        load_experiment(path, ["train.epochs"])


def test_override_value_is_validated(tmp_path):
    path = write(tmp_path, "name: cdcgan\nmodel: {name: cdcgan}\n")
    with pytest.raises(GxError, match=r"'train\.batch_size' must be an integer, got 'abc' \(str\)"):
        load_experiment(path, ["train.batch_size=abc"])


def test_missing_file(tmp_path):
    with pytest.raises(GxError, match=r"nope\.yaml: no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")


def test_file_that_is_not_yaml(tmp_path):
    path = write(tmp_path, "name: [unclosed\nmodel: {name: cdcgan}\n")
    with pytest.raises(GxError, match=r"cdcgan\.yaml: not valid YAML \(line \d+, column \d+"):
        load_experiment(path)


@pytest.mark.parametrize(
    "text, found", [("- a\n- b\n", "a list"), ("", "an empty file"), ("just text\n", "a str")]
)
def test_top_level_must_be_a_mapping(tmp_path, text, found):
    path = write(tmp_path, text)
    expected = rf"cdcgan\.yaml: the top level must be a mapping.*got {found}"
    with pytest.raises(GxError, match=expected):
        load_experiment(path)


# --- validation messages ----------------------------------------------------------------------


def test_unknown_key_suggests_nearest_key():
    message = error_of(with_section("train", {"epoch": 3}))
    assert message == "cdcgan.yaml: unknown key 'train.epoch'; did you mean 'train.epochs'?"


def test_unknown_top_level_key_suggests_nearest_key():
    message = error_of({**MINIMAL, "optimiser": {}})
    assert message.endswith("unknown key 'optimiser'; did you mean 'optimizer'?")


def test_unknown_key_without_a_close_match_lists_valid_keys():
    message = error_of(with_section("data", {"zzz": 1}))
    assert "unknown key 'data.zzz'; valid keys under 'data' are: " in message
    assert "dataset, root, split, image_size, channels, download" in message


def test_unknown_key_inside_a_list_item():
    message = error_of(with_section("optimizer", {"milestones": [{"epoch": 2, "facter": 0.1}]}))
    assert "unknown key 'optimizer.milestones[0].facter'" in message
    assert "did you mean 'optimizer.milestones[0].factor'?" in message


def test_wrong_type():
    message = error_of(with_section("train", {"batch_size": "abc"}))
    assert message == "cdcgan.yaml: 'train.batch_size' must be an integer, got 'abc' (str)"


def test_bool_is_not_an_int():
    assert "'train.epochs' must be an integer, got True (bool)" in error_of(
        with_section("train", {"epochs": True})
    )
    assert "'train.real_label' must be a number, got False (bool)" in error_of(
        with_section("train", {"real_label": False})
    )


def test_int_is_not_a_bool():
    message = error_of(with_section("data", {"download": 1}))
    assert "'data.download' must be true or false, got 1 (int)" in message


def test_integral_float_is_not_an_int():
    message = error_of(with_section("train", {"epochs": 5.0}))
    assert "'train.epochs' must be an integer, got 5.0 (float)" in message


def test_nullable_field_says_null_is_allowed():
    message = error_of(with_section("train", {"max_steps": "many"}))
    assert "'train.max_steps' must be an integer or null, got 'many' (str)" in message


def test_section_must_be_a_mapping():
    assert "'train' must be a mapping, got 5 (int)" in error_of(with_section("train", 5))


def test_out_of_range():
    generator = {"generator": {"lr": 0}}
    assert error_of(with_section("optimizer", generator)) == (
        "cdcgan.yaml: 'optimizer.generator.lr' must be > 0, got 0.0"
    )
    assert "'data.image_size' must be >= 8 and <= 256, got 512" in error_of(
        with_section("data", {"image_size": 512})
    )
    assert "'train.real_label' must be > 0 and <= 1, got 1.5" in error_of(
        with_section("train", {"real_label": 1.5})
    )
    assert "'seed' must be >= 0, got -1" in error_of({**MINIMAL, "seed": -1})


@pytest.mark.parametrize(
    "value, shown", [(float("inf"), "inf"), (float("nan"), "nan"), ("1e999", "'1e999'")]
)
def test_numbers_must_be_finite(value, shown):
    message = error_of(with_section("optimizer", {"generator": {"lr": value}}))
    assert message == f"cdcgan.yaml: 'optimizer.generator.lr' must be a finite number, got {shown}"


def test_choices():
    message = error_of(with_section("train", {"order": "g_first"}))
    assert message == "cdcgan.yaml: 'train.order' must be one of d_then_g, g_then_d, got 'g_first'"
    assert "'model.init' must be one of default, dcgan (or null), got 'xavier'" in error_of(
        {**MINIMAL, "model": {"name": "gan", "init": "xavier"}}
    )
    assert "'model.name' must be one of cdcgan, dcgan, cgan, gan, custom" in error_of(
        {**MINIMAL, "model": {"name": "stylegan"}}
    )


def test_betas_must_be_two_numbers_in_range():
    short = {"generator": {"betas": [0.5]}}
    assert "'optimizer.generator.betas' must be a list of 2 values, got [0.5] (list)" in error_of(
        with_section("optimizer", short)
    )
    too_big = {"discriminator": {"betas": [0.5, 1.0]}}
    assert "'optimizer.discriminator.betas[1]' must be >= 0 and < 1, got 1.0" in error_of(
        with_section("optimizer", too_big)
    )


def test_name_must_be_usable_in_folder_names():
    assert "'name' must match [A-Za-z0-9_.-]+" in error_of({**MINIMAL, "name": "my run"})
    assert "got ''" in error_of({**MINIMAL, "name": ""})


def test_missing_required_keys_give_an_example():
    assert error_of({"model": {"name": "gan"}}) == (
        "cdcgan.yaml: missing required key 'name'; add it, e.g. 'name: cdcgan'"
    )
    assert "missing required key 'model.name'; add it, e.g. 'model: {name: cdcgan}'" in error_of(
        {"name": "x"}
    )
    message = error_of(with_section("optimizer", {"milestones": [{"epoch": 3}]}))
    assert "missing required key 'optimizer.milestones[0].factor'" in message


def test_model_options_must_be_scalars():
    message = error_of({**MINIMAL, "model": {"name": "dcgan", "options": {"act": [1, 2]}}})
    assert "'model.options.act' must be a number, string, true/false or null" in message


def test_custom_model_needs_its_specs():
    for missing in ("generator", "discriminator"):
        model = {key: value for key, value in CUSTOM_MODEL.items() if key != missing}
        message = error_of({**MINIMAL, "model": model})
        assert f"'model.{missing}' is required when 'model.name' is custom" in message


def test_custom_model_rejects_reference_options():
    message = error_of({**MINIMAL, "model": {**CUSTOM_MODEL, "options": {"bn_eps": 0.8}}})
    assert "'model.options' is only for reference models" in message


@pytest.mark.parametrize(
    "key, value", [("generator", {"layers": []}), ("discriminator", {"layers": []})]
)
def test_reference_model_rejects_custom_only_keys(key, value):
    message = error_of({**MINIMAL, "model": {"name": "cdcgan", key: value}})
    assert f"'model.{key}' is only used when 'model.name' is custom (got 'cdcgan')" in message


def test_milestones_must_increase():
    milestones = [{"epoch": 3, "factor": 0.1}, {"epoch": 3, "factor": 0.5}]
    message = error_of(with_section("optimizer", {"milestones": milestones}))
    assert "'optimizer.milestones[1].epoch' must be greater than the previous" in message
    assert "increasing epoch order" in message
    assert "'optimizer.milestones[0].epoch' must be >= 1, got 0" in error_of(
        with_section("optimizer", {"milestones": [{"epoch": 0, "factor": 0.1}]})
    )


# -- what a resume may change, and what older run folders had -----------------------------------


def test_what_a_resume_may_change_is_declared_with_each_setting():
    from gx.config import resume_may_change

    assert resume_may_change() == {
        "train.epochs",
        "train.max_steps",
        "train.sample_every",
        "train.checkpoint_every",
        "train.eval_at_end",
        "train.tensorboard",
        "data.root",
        "data.download",
        "train.precision",  # checkpoints are float32 in every precision
    }


def test_settings_older_runs_lack_had_their_defaults():
    """Every setting added after run folders were written declares what those runs had; a
    saved config without them reads back as the experiment it was."""
    from gx.config import older_settings

    older = older_settings()
    assert set(older) == {
        "data.channels",
        "train.sync_batch_norm",
        "train.ema_decay",
        "train.ema_start",
        "train.class_loss",
        "optimizer.schedule.warmup_steps",
        "optimizer.schedule.decay",
        "optimizer.schedule.decay_start",
        "optimizer.schedule.decay_steps",
        "optimizer.schedule.final_factor",
        "train.fake_class",
        "train.clip_d",
        "train.gradient_penalty",
        "train.penalty_weight",
        "train.penalty_power",
        "train.began_gamma",
        "train.began_lambda_k",
        "train.ebgan_margin",
        "train.pullaway_weight",
        "train.info_categorical",
        "train.info_continuous",
        "train.precision",
        # optimizer.info is new, and so are alpha and weight_decay in every optimizer section
        *(
            f"optimizer.{network}.{name}"
            for network in ("generator", "discriminator", "info")
            for name in ("kind", "lr", "betas", "eps", "momentum", "alpha", "weight_decay")
        ),
    }
    defaults = from_dict(MINIMAL).to_dict()
    for key, value in older.items():
        section, *path = key.split(".")
        node = defaults[section]
        for part in path:
            node = node[part]
        assert node == value, key
