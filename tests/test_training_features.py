"""The training features beside the reference recipes: the average of G's weights, learning-rate
schedules, the projection discriminator term and the hinge loss (its step against a hand-written
one is in test_training_step.py; the new layers' backend parity in test_backend_parity.py).

Each is off by default; these tests pin what each computes, on both backends, against numpy
written from the definition, and that a run keeps, saves, resumes and samples with it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file
from support import gx
from tiny import tiny_experiment, tiny_settings

from gx.backends import get_backend
from gx.checkpoint import load_checkpoint
from gx.config import Schedule, experiment_from_dict, model_for
from gx.errors import GxError
from gx.models import build_model
from gx.spec import ModelSpec
from gx.tools.generate import sample
from gx.train.gan import GanTrainer
from gx.train.run import RunOptions, run_experiment
from gx.train.schedule import schedule_factor

BACKENDS = ["torch", pytest.param("jittor", marks=pytest.mark.jittor)]
DECAY, START = 0.75, 2


def train(
    tmp: Path, data_root: Path, backend: str, steps: int, resume: bool = False, **train: object
) -> Path:
    experiment = tiny_experiment(train={"max_steps": steps, "sample_every": 100, **train})
    folder = tmp / "run"
    run_experiment(
        experiment,
        RunOptions(
            backend=backend,
            device="cpu",
            data_root=str(data_root),
            out=str(folder),
            resume=str(folder) if resume else None,
            progress=False,
        ),
    )
    return folder


# -- the average of G's weights -------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_the_average_follows_its_definition_step_by_step(backend_name: str) -> None:
    experiment = tiny_experiment(train={"ema_decay": DECAY, "ema_start": START})
    backend = get_backend(backend_name, "cpu")
    trainer = GanTrainer(backend, model_for(experiment), experiment)
    rng = np.random.default_rng(5)
    images = rng.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    expected = {key: value.astype(np.float64) for key, value in trainer.generator_weights().items()}
    for step in range(1, 6):
        trainer.step(backend.tensor(images), backend.tensor(labels))
        weights = trainer.generator_weights()
        for key, value in weights.items():
            blended = DECAY * expected[key] + (1 - DECAY) * value
            expected[key] = value.astype(np.float64) if step <= START else blended
        average = trainer.get_state()["generator_ema"]
        for key, value in expected.items():
            np.testing.assert_allclose(average[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
    # after the start the average lags G's weights: it is not a copy
    gap = np.abs(average["fc.weight"] - weights["fc.weight"]).max()
    assert gap > 1e-4


@pytest.mark.slow
def test_without_an_average_the_checkpoint_has_no_average_file(
    tmp_path: Path, data_root: Path
) -> None:
    folder = train(tmp_path, data_root, "torch", 2)
    assert not (folder / "checkpoint" / "generator_ema.safetensors").exists()
    assert load_checkpoint(folder).generator_ema is None


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.slow
def test_sampling_uses_the_average_and_resuming_continues_it(
    tmp_path: Path, data_root: Path, backend_name: str
) -> None:
    whole = train(tmp_path / "whole", data_root, backend_name, 6, ema_decay=DECAY)
    saved = load_file(str(whole / "checkpoint" / "generator_ema.safetensors"))
    checkpoint = load_checkpoint(whole)
    assert set(saved) == set(checkpoint.generator)
    assert np.abs(saved["fc.weight"] - checkpoint.generator["fc.weight"]).max() > 1e-4

    # gx generate's images are the average's, not G's own
    images = sample(whole, [0, 1, 2], seed=4, backend_name=backend_name, device="cpu")
    backend = get_backend(backend_name, "cpu")
    module = backend.compile(checkpoint.model.generator, 0)
    for key, tensor in backend.state_tensors(module, checkpoint.model.generator).items():
        backend.assign(tensor, saved[key])
    backend.set_training(module, False)
    z = np.random.default_rng(4).standard_normal((3, 16), dtype=np.float32)
    expected = backend.numpy(
        module({"z": backend.tensor(z), "label": backend.tensor(np.arange(3))})
    )
    np.testing.assert_array_equal(images, expected)

    # three steps, then three more after a resume: the same average as six in one go
    split = train(tmp_path / "split", data_root, backend_name, 3, ema_decay=DECAY)
    train(tmp_path / "split", data_root, backend_name, 6, resume=True, ema_decay=DECAY)
    resumed = load_file(str(split / "checkpoint" / "generator_ema.safetensors"))
    for key, value in saved.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


# -- learning-rate schedules ----------------------------------------------------------------------


def test_schedule_factors_rise_then_fall_as_defined() -> None:
    warm_linear = Schedule(warmup_steps=4, decay="linear", decay_steps=12, final_factor=0.1)
    factors = [schedule_factor(warm_linear, step, 100) for step in range(14)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # from step 4 to step 12 the factor falls in a straight line from 1 to 0.1, then holds
    assert factors[4:] == pytest.approx([1 - 0.9 * k / 8 for k in range(9)] + [0.1])
    cosine = Schedule(decay="cosine", decay_steps=10)
    assert schedule_factor(cosine, 5, 100) == pytest.approx(0.5)
    assert schedule_factor(cosine, 2, 100) == pytest.approx((1 + math.cos(math.pi * 0.2)) / 2)
    assert schedule_factor(cosine, 10, 100) == schedule_factor(cosine, 50, 100) == 0.0
    # without decay_steps, over the whole run: the factor reaches final_factor as it ends
    to_the_end = Schedule(decay="linear", final_factor=0.5)
    assert [schedule_factor(to_the_end, step, 4) for step in range(4)] == pytest.approx(
        [1.0, 0.875, 0.75, 0.625]
    )
    assert schedule_factor(Schedule(), 10**6, 10) == 1.0
    # a late decay: 1 until decay_start (even after a shorter warm-up), then down to 0.2
    late = Schedule(warmup_steps=2, decay="linear", decay_start=6, decay_steps=10, final_factor=0.2)
    factors = [schedule_factor(late, step, 100) for step in range(12)]
    assert factors == pytest.approx([0.5, 1.0, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2, 0.2])
    # decay_start past a short run's end: no decay at all
    beyond = Schedule(decay="cosine", decay_start=50)
    assert [schedule_factor(beyond, step, 20) for step in range(20)] == [1.0] * 20


@pytest.mark.slow
def test_a_run_logs_the_scheduled_rates(tmp_path: Path, data_root: Path) -> None:
    schedule = {"warmup_steps": 2, "decay": "linear", "decay_steps": 4, "final_factor": 0.5}
    experiment = experiment_from_dict(
        tiny_settings(
            train={"max_steps": 6, "sample_every": 100},
            optimizer={"generator": {"lr": 0.001}, "schedule": schedule},
        ),
        "test",
    )
    folder = tmp_path / "run"
    options = RunOptions(backend="torch", data_root=str(data_root), out=str(folder), progress=False)
    run_experiment(experiment, options)
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    rates = [json.loads(line)["lr_g"] for line in lines]
    assert rates == pytest.approx([0.0005, 0.001, 0.001, 0.00075, 0.0005, 0.0005])


# -- projection and hinge -------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_projection_is_the_class_vectors_inner_product(backend_name: str) -> None:
    spec = ModelSpec.from_dict(
        {
            "inputs": {"h": [5], "label": {"classes": 3}},
            "layers": [{"name": "term", "kind": "projection", "input": ["h", "label"]}],
        }
    )
    backend = get_backend(backend_name, "cpu")
    module = backend.compile(spec, 7)
    weight = backend.numpy(module.term.weight).astype(np.float64)
    assert weight.shape == (3, 5)
    assert np.abs(weight).max() <= 1 / math.sqrt(5)  # a linear layer's uniform bound
    rng = np.random.default_rng(1)
    h, labels = rng.standard_normal((4, 5)).astype(np.float32), np.array([2, 0, 2, 1])
    output = backend.numpy(module({"h": backend.tensor(h), "label": backend.tensor(labels)}))
    expected = np.einsum("nc,nc->n", weight[labels], h.astype(np.float64))[:, None]
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)


def test_cdcgan_projection_and_logit_options_shape_the_discriminator() -> None:
    plain = build_model("cdcgan").discriminator
    projected = build_model("cdcgan", {"d_projection": True}).discriminator
    logit = build_model("cdcgan", {"d_projection": True, "d_output": "logit"}).discriminator
    assert [info.kind for info in projected.infos[-5:]] == [
        "flatten",
        "flatten",
        "projection",
        "add",
        "sigmoid",
    ]
    assert logit.infos[-1].kind == "add" and logit.output_value.shape == (1,)
    # the class vectors: 10 classes x the 128 x 4 x 4 features behind the concatenation
    added = sum(i.parameter_count for i in projected.infos) - sum(
        i.parameter_count for i in plain.infos
    )
    assert added == 10 * 128 * 4 * 4
    assert (
        build_model("cdcgan").generator.to_dict()
        == build_model("cdcgan", {"d_projection": True}).generator.to_dict()
    )


def test_hinge_refuses_a_discriminator_that_ends_in_a_sigmoid(
    tmp_path: Path, data_root: Path
) -> None:
    experiment = tmp_path / "hinge.yaml"
    experiment.write_text(yaml.safe_dump(tiny_settings(train={"loss": "hinge"})))
    code, output = gx("run", experiment, "--out", tmp_path / "run", "--data-root", data_root)
    assert code == 2
    assert output.strip().splitlines() == [
        "error: train.loss hinge needs D's raw scores, but 'custom' ends D in a sigmoid; give "
        "it no final sigmoid, or use train.loss bce"
    ]
    assert not (tmp_path / "run").exists()
    with pytest.raises(GxError, match="d_output: logit"):
        model_for(
            experiment_from_dict(
                {"name": "x", "model": {"name": "cdcgan"}, "train": {"loss": "hinge"}}, "test"
            )
        )


def test_hinge_sees_a_sigmoid_behind_reshapes() -> None:
    """A sigmoid followed only by layers that rearrange its values (the PyTorch DCGAN example's
    view(-1, 1).squeeze(1)) still ends D in a sigmoid."""
    settings = tiny_settings(train={"loss": "hinge"})
    settings["model"]["discriminator"]["layers"] += [
        {"name": "column", "kind": "reshape", "shape": [1, 1]},
        {"name": "scores", "kind": "flatten"},
    ]
    model = build_model("custom", generator=settings["model"]["generator"],
                        discriminator=settings["model"]["discriminator"])  # fmt: skip
    assert model.discriminator.output_kind == "sigmoid"
    with pytest.raises(GxError, match="'custom' ends D in a sigmoid"):
        model_for(experiment_from_dict(settings, "test"))


def test_cdcgan_classifier_option_gives_score_and_class_logits() -> None:
    both = build_model("cdcgan", {"d_projection": True, "d_classifier": True, "d_output": "logit"})
    assert both.discriminator.output_value.shape == (11,)
    assert both.discriminator.infos[-1].inputs == ("logit", "class_logits")
    alone = build_model("cdcgan", {"d_classifier": True, "d_output": "logit"})
    assert alone.discriminator.infos[-1].inputs == ("score", "class_logits")


@pytest.mark.parametrize(
    "options, train, message",
    [
        (
            {"d_output": "logit"},
            {"loss": "hinge", "class_loss": 1.0},
            "train.class_loss reads D's output 2, (10,), but 'cdcgan' gives no such output; give "
            "it d_classifier: true (D's outputs: its score, then one head per term: class logits, "
            "codes, embedding)",
        ),
        (
            {"d_classifier": True},
            {"class_loss": 1.0},
            "D's class head must give raw logits, which the cross-entropy reads, so D cannot end "
            "it in a sigmoid (nor, with score and logits in one output, use train.loss bce); use "
            "train.loss hinge or mse with D's raw output, or a separate class head",
        ),
    ],
)
def test_class_loss_needs_class_logits(options: dict, train: dict, message: str) -> None:
    settings = {"name": "x", "model": {"name": "cdcgan", "options": options}, "train": train}
    with pytest.raises(GxError) as error:
        model_for(experiment_from_dict(settings, "test"))
    assert str(error.value) == message


@pytest.mark.parametrize(
    "schedule, message",
    [
        (
            {"decay": "sine"},
            "'optimizer.schedule.decay' must be one of none, linear, cosine, got 'sine'",
        ),
        (
            {"warmup_steps": 10, "decay": "linear", "decay_steps": 10},
            "'optimizer.schedule.decay_steps' (10) must be greater than",
        ),
        (
            {"decay": "linear", "decay_start": 20, "decay_steps": 20},
            "'optimizer.schedule.decay_steps' (20) must be greater than "
            "'optimizer.schedule.decay_start' (20)",
        ),
    ],
)
def test_schedule_mistakes_are_one_line(
    tmp_path: Path, data_root: Path, schedule: dict, message: str
) -> None:
    experiment = tmp_path / "schedule.yaml"
    experiment.write_text(yaml.safe_dump(tiny_settings(optimizer={"schedule": schedule})))
    code, output = gx("run", experiment, "--out", tmp_path / "run", "--data-root", data_root)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "run").exists()


# -- spectral normalization -----------------------------------------------------------------------


def normalize(vector: np.ndarray) -> np.ndarray:
    return vector / max(np.linalg.norm(vector), 1e-12)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_spectral_norm_follows_its_definition(backend_name: str) -> None:
    spec = ModelSpec.from_dict(
        {
            "inputs": {"x": [6]},
            "layers": [{"name": "fc", "kind": "linear", "out": 4, "spectral_norm": True}],
        }
    )
    backend = get_backend(backend_name, "cpu")
    module = backend.compile(spec, 9)
    tensors = backend.state_tensors(module, spec)
    weight = backend.numpy(tensors["fc.weight"]).astype(np.float64)
    bias = backend.numpy(tensors["fc.bias"]).astype(np.float64)
    u = backend.numpy(tensors["fc.sn_u"]).astype(np.float64)
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-6)  # drawn as a unit vector
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    upstream = rng.standard_normal((3, 4)).astype(np.float32)

    for training in (True, True, False):
        backend.set_training(module, training)
        v = normalize(weight.T @ u)
        if training:
            u = normalize(weight @ v)
        sigma = u @ weight @ v
        expected = x @ (weight / sigma).T + bias
        # gradient of sum(upstream * output) through W / sigma, with u and v held constant
        direct = upstream.T.astype(np.float64) @ x
        expected_grad = direct / sigma - (direct * weight).sum() / sigma**2 * np.outer(u, v)

        inputs = backend.tensor(x)
        output = module({"x": inputs})
        loss = (output * backend.tensor(upstream)).sum()
        (gradient,) = backend.gradients(loss, [tensors["fc.weight"]])
        np.testing.assert_allclose(backend.numpy(output), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(backend.numpy(gradient), expected_grad, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(backend.numpy(tensors["fc.sn_u"]), u, rtol=1e-5, atol=1e-6)
    # the largest singular value of the normalized weight is 1, after a few iterations
    assert sigma == pytest.approx(np.linalg.svd(weight, compute_uv=False)[0], rel=0.05)


# -- a discriminator of several outputs -----------------------------------------------------------


def with_class_head_as_second_output(model_dict: dict) -> dict:
    """cdcgan's ``d_classifier`` D, whose one output concatenates score and class logits, as a
    D of two outputs [score, class_logits] (the form AC-GAN code returns): the same layers and
    weights, without the final concat."""
    discriminator = dict(model_dict["discriminator"])
    layers = [layer for layer in discriminator["layers"] if layer["name"] != "scores"]
    return {**discriminator, "layers": layers, "output": ["score", "class_logits"]}


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.slow
def test_a_class_head_as_second_output_trains_as_the_concatenated_one(backend_name: str) -> None:
    settings = {
        "name": "heads",
        "model": {
            "name": "cdcgan",
            "options": {"d_classifier": True, "d_output": "logit", "noise_dim": 8, "d_width": 8},
        },
        "data": {"split": "test"},
        "train": {"loss": "hinge", "class_loss": 0.5, "batch_size": 4},
    }
    concatenated = experiment_from_dict(settings, "concatenated")
    model = model_for(concatenated)
    two = with_class_head_as_second_output(model.to_dict())
    assert len(model.discriminator.outputs) == 1
    custom = {
        **settings,
        "model": {
            "name": "custom",
            "generator": model.to_dict()["generator"],
            "discriminator": two,
        },
    }
    separate = experiment_from_dict(custom, "separate")
    heads = model_for(separate)
    assert heads.discriminator.outputs == ("score", "class_logits")
    assert [v.shape for v in heads.discriminator.output_values] == [(1,), (10,)]

    backend = get_backend(backend_name, "cpu")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    trainers = [GanTrainer(backend, m, e) for m, e in ((model, concatenated), (heads, separate))]
    for _ in range(2):
        results = [t.step(backend.tensor(images), backend.tensor(labels)) for t in trainers]
        assert results[0] == results[1]
    states = [trainer.get_state() for trainer in trainers]
    for part in ("generator", "discriminator"):
        assert states[0][part].keys() == states[1][part].keys()
        for key, value in states[0][part].items():
            np.testing.assert_array_equal(value, states[1][part][key], err_msg=key)


def test_outputs_are_checked_and_written_back() -> None:
    spec = {
        "inputs": {"x": [4]},
        "layers": [
            {"name": "a", "kind": "linear", "out": 1},
            {"name": "b", "kind": "linear", "input": "x", "out": 3},
        ],
        "output": ["a", "b"],
    }
    parsed = ModelSpec.from_dict(spec)
    assert parsed.outputs == ("a", "b") and parsed.output == "a"
    assert parsed.to_dict()["output"] == ["a", "b"]
    assert ModelSpec.from_dict(parsed.to_dict()) == parsed
    for output, message in (
        (["a", "c"], "output 'c' is not a layer name"),
        (["a", "a"], "'output' names a layer twice"),
        ([], "'output' must be a layer name or a list of them"),
    ):
        with pytest.raises(GxError, match=message):
            ModelSpec.from_dict({**spec, "output": output})


def test_a_generator_of_several_outputs_is_refused() -> None:
    generator = {
        "inputs": {"z": [4]},
        "layers": [
            {"name": "fc", "kind": "linear", "out": 4},
            {"name": "image", "kind": "reshape", "shape": [1, 2, 2]},
        ],
        "output": ["image", "fc"],
    }
    discriminator = {
        "inputs": {"image": [1, 2, 2]},
        "layers": [
            {"name": "flat", "kind": "flatten"},
            {"name": "score", "kind": "linear", "out": 1},
        ],
    }
    with pytest.raises(GxError, match="the generator has 2 outputs; it makes images, one output"):
        build_model("custom", generator=generator, discriminator=discriminator)
