"""The losses and terms of gx.losses in whole runs of the tiny experiment: a run stopped and
resumed equals the run done in one go, bit for bit, with every piece of state they add (BEGAN's
k, the penalty stream, the information optimizer, RMSprop's and AdamW's slots, several D steps);
the other backend restores all of it; both backends train each of them inside the float32
rounding floor of gx parity; and a D that a loss cannot read is one line of error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from support import gx
from tiny import tiny_autoencoder_model, tiny_critic_model, tiny_model, tiny_settings, tiny_with

from gx.backends import get_backend
from gx.checkpoint import load_checkpoint
from gx.config import Experiment, experiment_from_dict, model_for
from gx.errors import GxError
from gx.parity import run_parity
from gx.tools.generate import sample
from gx.train.gan import GanTrainer
from gx.train.run import RunOptions, run_experiment, sample_inputs

BACKENDS = ("torch", pytest.param("jittor", marks=pytest.mark.jittor))
SHORT, LONG = 3, 6
PARTS = ("generator", "discriminator", "optimizer_g", "optimizer_d", "optimizer_info")

# Each piece of state the losses add, in a run of its own.
STATEFUL = {
    # k_t, the equilibrium controller: a gain large enough that it moves in a few steps
    "began": lambda: tiny_with(
        tiny_autoencoder_model(),
        train={"loss": "began", "order": "g_then_d", "began_lambda_k": 0.05},
    ),
    # the information optimizer over G and D, and G's code input drawn from the noise stream
    "infogan": lambda: tiny_with(
        tiny_critic_model(conditional=True, heads=("class_logits", "code_estimate"), code=True),
        train={"loss": "mse", "info_categorical": 1.0, "info_continuous": 0.1},
    ),
    # the penalty stream, RMSprop's and AdamW's slots and step counts, D's clipping, and a
    # resume between a D-only step and the next G step
    "wasserstein-wgan_gp-d_steps2": lambda: tiny_with(
        tiny_critic_model(),
        train={"loss": "wasserstein", "gradient_penalty": "wgan_gp", "d_steps": 2, "clip_d": 0.5},
        optimizer={"generator": {"kind": "adamw"}, "discriminator": {"kind": "rmsprop"}},
    ),
}


def settings_of(experiment: Experiment, *changes: str) -> Experiment:
    data = experiment.to_dict()
    for change in changes:
        key, value = change.split("=")
        section, name = key.split(".")
        data[section][name] = yaml.safe_load(value)
    return experiment_from_dict(data, "test")


def train(experiment: Experiment, backend: str, root: Path, out: Path, **options: Any) -> Path:
    result = run_experiment(
        experiment,
        RunOptions(
            backend=backend,
            device="cpu",
            data_root=str(root),
            out=str(out),
            progress=False,
            **options,
        ),
    )
    assert result.stopped == "finished", result.summary
    return out


def records(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [
        {key: value for key, value in json.loads(line).items() if key != "images_per_s"}
        for line in lines
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(STATEFUL))
@pytest.mark.slow
def test_resumed_run_equals_straight_run(tmp_path, mnist_root, name, backend):
    experiment = STATEFUL[name]()
    every_step = ("train.sample_every=1", "train.checkpoint_every=1")
    straight = train(
        settings_of(experiment, f"train.max_steps={LONG}", *every_step),
        backend,
        mnist_root,
        tmp_path / "straight",
    )
    resumed = train(
        settings_of(experiment, f"train.max_steps={SHORT}"), backend, mnist_root, tmp_path / "r"
    )
    train(
        settings_of(experiment, f"train.max_steps={LONG}"),
        backend,
        mnist_root,
        resumed,
        resume=str(resumed),
    )

    assert records(resumed) == records(straight)
    assert [line["step"] for line in records(straight)] == list(range(1, LONG + 1))
    first, second = load_checkpoint(straight), load_checkpoint(resumed)
    for part in PARTS:
        one, other = getattr(first, part), getattr(second, part)
        assert (one is None) == (other is None) == (part == "optimizer_info" and name != "infogan")
        for key in one or {}:
            assert np.array_equal(one[key], other[key]), f"{part}: {key}"
    assert first.state["rng"] == second.state["rng"]
    assert first.state.get("loss_state") == second.state.get("loss_state")
    if name == "began":
        assert first.state["loss_state"]["k"] > 0
    if name == "infogan":
        assert all(line["info_loss"] is not None for line in records(straight))
    if name.startswith("wasserstein"):
        assert "penalty" in first.state["rng"]
        assert [line["g_loss"] is None for line in records(straight)] == [True, False] * 3


@pytest.mark.jittor
@pytest.mark.parametrize("writer, reader", [("torch", "jittor"), ("jittor", "torch")])
@pytest.mark.parametrize("name", sorted(STATEFUL))
@pytest.mark.slow
def test_the_other_backend_restores_the_losses_state(tmp_path, mnist_root, name, writer, reader):
    experiment = settings_of(STATEFUL[name](), f"train.max_steps={SHORT}")
    checkpoint = load_checkpoint(train(experiment, writer, mnist_root, tmp_path / "run"))
    trainer = GanTrainer(get_backend(reader, "cpu"), model_for(experiment), experiment)
    trainer.restore(checkpoint, "the checkpoint")
    state = trainer.get_state()
    for part in PARTS:
        saved = getattr(checkpoint, part)
        assert (saved is None) == (state[part] is None), part
        assert (saved or {}).keys() == (state[part] or {}).keys(), part
        for key in saved or {}:
            assert np.array_equal(np.asarray(state[part][key], np.float32), saved[key]), key
    assert state["rng"] == checkpoint.state["rng"] and state["step"] == SHORT
    assert (state["loss_state"] or None) == checkpoint.state.get("loss_state")


def test_a_generator_with_codes_samples_them_at_zero(tmp_path, mnist_root):
    experiment = settings_of(STATEFUL["infogan"](), f"train.max_steps={SHORT}")
    folder = train(experiment, "torch", mnist_root, tmp_path / "run")
    model = model_for(experiment)
    fixed = sample_inputs(model, experiment.seed)
    assert fixed["code"].shape == (100, 2) and not fixed["code"].any()
    noise = np.random.default_rng(5).standard_normal((3, 16)).astype(np.float32)
    images = sample(folder, labels=[1, 4, 7], noise=noise, backend_name="torch", device="cpu")
    # G by hand from the checkpoint: tanh(W [embedding(y), z, 0] + b)
    weights = load_checkpoint(folder).generator
    joined = np.concatenate(
        [weights["emb.weight"][[1, 4, 7]], noise, np.zeros((3, 2), np.float32)], axis=1
    ).astype(np.float64)
    expected = np.tanh(joined @ weights["fc.weight"].T + weights["fc.bias"])
    np.testing.assert_allclose(images.reshape(3, -1), expected, atol=1e-5)


DRAGAN_CRITIC = tiny_critic_model(
    probability=True, conditional=True, heads=("class_logits",), batch_norm=True
)


# Every new loss and term, grouped into runs that combine what goes together, in lockstep on
# both backends against the floor, at batch 16.
PARITY = {
    "wasserstein-wgan_gp-clip-d_steps2-rmsprop-adamw": (
        tiny_critic_model(),
        {"loss": "wasserstein", "gradient_penalty": "wgan_gp", "clip_d": 0.5, "d_steps": 2},
        {"generator": {"kind": "adamw"}, "discriminator": {"kind": "rmsprop", "lr": 0.0005}},
    ),
    "relativistic": (tiny_critic_model(), {"loss": "relativistic", "order": "g_then_d"}, {}),
    "relativistic_average-r1-sgan": (
        tiny_critic_model(heads=("class_logits",), fake_class=True),
        {
            "loss": "relativistic_average",
            "gradient_penalty": "r1",
            "class_loss": 1.0,
            "fake_class": True,
        },
        {},
    ),
    "softmax-wgan_div": (
        tiny_critic_model(),
        {"loss": "softmax", "gradient_penalty": "wgan_div"},
        {},
    ),
    # DRAGAN's own recipe: BCE on a batch-normalized critic ending in a sigmoid, whose second
    # derivatives run through both of Jittor's second-order layers
    "boundary_seeking-acgan-dragan": (
        DRAGAN_CRITIC,
        {
            "loss": "boundary_seeking",
            "order": "g_then_d",
            "class_loss": 1.0,
            "gradient_penalty": "dragan",
        },
        {},
    ),
    "began": (tiny_autoencoder_model(), {"loss": "began", "began_lambda_k": 0.05}, {}),
    "ebgan-pullaway": (
        tiny_autoencoder_model(embedding=True),
        {"loss": "ebgan", "order": "g_then_d", "pullaway_weight": 0.1},
        {},
    ),
    "infogan": (
        tiny_critic_model(conditional=True, heads=("class_logits", "code_estimate"), code=True),
        {"loss": "mse", "info_categorical": 1.0, "info_continuous": 0.1},
        {},
    ),
}
PARITY_STEPS, PARITY_SEEDS = 10, 3


@pytest.mark.jittor
@pytest.mark.cross_framework
@pytest.mark.parametrize("name", sorted(PARITY))
@pytest.mark.slow
def test_each_loss_and_term_stays_within_the_floor(mnist_root, name):
    model, train_settings, optimizer = PARITY[name]
    experiment = tiny_with(model, train={"batch_size": 16, **train_settings}, optimizer=optimizer)
    result = run_parity(experiment, PARITY_STEPS, "cpu", str(mnist_root), PARITY_SEEDS)
    print(result.verdict_line())
    assert result.steps == PARITY_STEPS and not result.stopped_early, result.verdict_line()
    assert result.within, result.verdict_line()
    losses = result.seeds[0].losses
    assert losses["torch"]["d"] != losses["torch_float64"]["d"]  # float32 rounding is there


@pytest.mark.jittor
@pytest.mark.cross_framework
@pytest.mark.slow
def test_a_penalty_without_jittors_second_order_layers_is_caught(mnist_root, monkeypatch):
    """The negative control: Jittor's batch norm and sigmoid with their first-order backward
    only, the penalty's second derivatives missing their terms; the rule must see it."""
    from gx.backends.jittor.backend import JittorBackend

    build = JittorBackend.build
    monkeypatch.setattr(
        JittorBackend,
        "build",
        lambda self, spec, masks=None, second_order=False: build(self, spec, masks),
    )
    model, train_settings, optimizer = PARITY["boundary_seeking-acgan-dragan"]
    experiment = tiny_with(model, train={"batch_size": 16, **train_settings}, optimizer=optimizer)
    result = run_parity(experiment, PARITY_STEPS, "cpu", str(mnist_root), 1)
    print(result.verdict_line())
    assert not result.within, result.verdict_line()


# -- a D the loss cannot read ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, train, message",
    [
        (
            tiny_model(False),
            {"loss": "began"},
            "train.loss began needs D to reconstruct its image (an autoencoder), but D's first "
            "output is (1,), not the image's (1, 28, 28); make D's first output a decoder's image",
        ),
        (
            tiny_autoencoder_model(),
            {"loss": "began", "gradient_penalty": "r1"},
            "train.gradient_penalty r1 differentiates D's score, but train.loss began reads a "
            "reconstruction; use it with a loss of scores",
        ),
        (
            tiny_critic_model(),
            {"loss": "wasserstein", "info_continuous": 1.0},
            "train.info_continuous reads G's continuous codes, but G has none; declare one among "
            "G's inputs as {uniform: [size]}, or set train.info_continuous: 0",
        ),
        (
            tiny_critic_model(heads=("class_logits",)),
            {"loss": "wasserstein", "class_loss": 1.0},
            "train.class_loss needs the classes G draws its fakes for: give G a 'label' input, "
            "or set train.fake_class: true (SGAN: fakes are D's extra class)",
        ),
        (
            tiny_critic_model(conditional=True, heads=("class_logits",)),
            {"loss": "wasserstein", "class_loss": 1.0, "fake_class": True},
            "train.class_loss reads D's output 2, (11,), but 'custom' gives (10,); give D that "
            "head (D's outputs: its score, then one head per term: class logits, codes, "
            "embedding)",
        ),
        (
            tiny_critic_model(),
            {"loss": "boundary_seeking"},
            "train.loss boundary_seeking reads D's probabilities: end D in a sigmoid (cdcgan: "
            "d_output: probability)",
        ),
    ],
)
def test_a_discriminator_the_terms_cannot_read_is_refused(model, train, message):
    with pytest.raises(GxError) as error:
        model_for(tiny_with(model, train=train))
    assert str(error.value) == message


def test_the_refusal_is_one_line_and_writes_nothing(tmp_path, mnist_root):
    settings = tiny_settings()
    settings["model"] = tiny_model(False)
    settings["train"]["loss"] = "ebgan"
    path = tmp_path / "ebgan.yaml"
    path.write_text(yaml.safe_dump(settings))
    code, output = gx("run", path, "--out", tmp_path / "run", "--data-root", mnist_root)
    assert code == 2
    assert output.strip().splitlines() == [
        "error: train.loss ebgan needs D to reconstruct its image (an autoencoder), but D's "
        "first output is (1,), not the image's (1, 28, 28); make D's first output a "
        "decoder's image"
    ]
    assert not (tmp_path / "run").exists()
