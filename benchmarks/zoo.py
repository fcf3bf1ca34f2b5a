"""The GAN zoo: gx import of the public PyTorch-GAN collection's networks, checked and trained.

    python benchmarks/zoo.py PATH/TO/PyTorch-GAN [--only gan,dcgan] [--steps 60] [--seeds 3]
                             [--batch 64] [--data-root DIR] [--work DIR] [--json FILE]

For each of the collection's 18 noise-to-image GANs (implementations/<name>/<name>.py) this:

1. extracts the script's networks as they are: its imports (torchvision aside), its module-level
   definitions and constants, and its classes, with only ``opt = parser.parse_args()`` replaced
   by the argparse defaults written in as constants (the script trains at import time, so
   running it whole is not an option);
2. imports G and D with ``gx import`` into one folder, as a user would;
3. checks the compiled networks against the originals on both backends (training and eval
   mode: outputs and the gradients of sum(output * r));
4. runs ``gx parity`` on the folder's experiment with the script's own loss and settings where
   gx has them.

It prints one line per script and a Markdown table (docs/zoo.md records a run). The collection's
code stays out of this repository: pass the path of a checkout.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
GX = [sys.executable, "-m", "gx"]


@dataclass(frozen=True)
class Network:
    role: str  # generator or discriminator
    name: str  # the class in the script
    inputs: tuple[str, ...]  # gx import --input declarations, forward's order


@dataclass(frozen=True)
class Script:
    name: str
    path: str  # below implementations/
    networks: tuple[Network, ...] = ()
    # --set overrides for gx parity: the script's loss, optimizers and image size
    settings: tuple[str, ...] = ()
    not_a_pair: str = ""  # why its networks are no fixed-graph G and D pair


def _pair(z: str, image: str, *labels: str) -> tuple[Network, Network]:
    return (
        Network("generator", "Generator", (z, *labels)),
        Network("discriminator", "Discriminator", (image, *labels)),
    )


# Each script's recipe as gx settings: its loss and terms, its optimizers, its step order (all
# train G first, then D on (real + fake) / 2, but the WGANs, which train D every step and G every
# n_critic-th) and its image size.
ADAM = ("optimizer.generator.betas=[0.5, 0.999]", "optimizer.discriminator.betas=[0.5, 0.999]")
G_THEN_D = ("train.order=g_then_d", *ADAM)
SIZE_32 = ("data.image_size=32",)
CRITIC = ("train.order=d_then_g", "train.d_steps=5", "train.loss=wasserstein")

SCRIPTS = (
    Script("gan", "gan/gan.py", _pair("z=100", "image=1x28x28"), G_THEN_D),
    Script(
        "cgan",
        "cgan/cgan.py",
        _pair("z=100", "image=1x32x32", "label=class:10"),
        (*G_THEN_D, "train.loss=mse", *SIZE_32),
    ),
    Script("dcgan", "dcgan/dcgan.py", _pair("z=100", "image=1x32x32"), (*G_THEN_D, *SIZE_32)),
    Script(
        "acgan",
        "acgan/acgan.py",
        (
            Network("generator", "Generator", ("z=100", "label=class:10")),
            Network("discriminator", "Discriminator", ("image=1x32x32",)),
        ),
        (*G_THEN_D, *SIZE_32, "train.class_loss=1.0"),
    ),
    Script(
        "infogan",
        "infogan/infogan.py",
        (
            Network("generator", "Generator", ("z=62", "label=onehot:10", "code=uniform:2")),
            Network("discriminator", "Discriminator", ("image=1x32x32",)),
        ),
        (
            *G_THEN_D,
            *SIZE_32,
            "train.loss=mse",
            "train.info_categorical=1.0",
            "train.info_continuous=0.1",
            "optimizer.info.betas=[0.5, 0.999]",
        ),
    ),
    Script(
        "lsgan",
        "lsgan/lsgan.py",
        _pair("z=100", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.loss=mse"),
    ),
    Script(
        "wgan",
        "wgan/wgan.py",
        _pair("z=100", "image=1x28x28"),
        (
            *CRITIC,
            "train.clip_d=0.01",
            "optimizer.generator.kind=rmsprop",
            "optimizer.discriminator.kind=rmsprop",
            "optimizer.generator.lr=0.00005",
            "optimizer.discriminator.lr=0.00005",
        ),
    ),
    Script(
        "wgan_gp",
        "wgan_gp/wgan_gp.py",
        _pair("z=100", "image=1x28x28"),
        (*CRITIC, *ADAM, "train.gradient_penalty=wgan_gp", "train.penalty_weight=10"),
    ),
    Script(
        "wgan_div",
        "wgan_div/wgan_div.py",
        _pair("z=100", "image=1x28x28"),
        (*CRITIC, *ADAM, "train.gradient_penalty=wgan_div"),
    ),
    Script(
        "dragan",
        "dragan/dragan.py",
        _pair("z=100", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.gradient_penalty=dragan", "train.penalty_weight=10"),
    ),
    Script(
        "began",
        "began/began.py",
        _pair("z=62", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.loss=began"),
    ),
    Script(
        "bgan",
        "bgan/bgan.py",
        _pair("z=100", "image=1x28x28"),
        (*G_THEN_D, "train.loss=boundary_seeking"),
    ),
    Script(
        "ebgan",
        "ebgan/ebgan.py",
        _pair("z=62", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.loss=ebgan", "train.pullaway_weight=0.1"),
    ),
    Script(
        "sgan",
        "sgan/sgan.py",
        _pair("z=100", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.class_loss=1.0", "train.fake_class=true"),
    ),
    Script(
        "softmax_gan",
        "softmax_gan/softmax_gan.py",
        _pair("z=100", "image=1x28x28"),
        (*G_THEN_D, "train.loss=softmax"),
    ),
    Script(
        "relativistic_gan",
        "relativistic_gan/relativistic_gan.py",
        _pair("z=100", "image=1x32x32"),
        (*G_THEN_D, *SIZE_32, "train.loss=relativistic"),
    ),
    Script(
        "cogan",
        "cogan/cogan.py",
        not_a_pair="coupled generators and discriminators share layers between two GANs, and "
        "each network returns two images or two scores: no single fixed-graph G and D",
    ),
    Script(
        "cluster_gan",
        "cluster_gan/clustergan.py",
        not_a_pair="trains an encoder beside G and D (three networks, a latent clustering loss): "
        "not a G and D pair",
    ),
)


# -- 1. the script's networks, with argparse's defaults as constants ------------------------------


def _argparse_defaults(tree: ast.Module) -> dict[str, Any]:
    """``--name`` -> default of every ``parser.add_argument`` call (literals only)."""
    defaults: dict[str, Any] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = str(node.args[0].value).lstrip("-").replace("-", "_")
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if "default" in keywords:
                defaults[name] = ast.literal_eval(keywords["default"])
            elif isinstance(action := keywords.get("action"), ast.Constant):
                defaults[name] = action.value == "store_false"
    return defaults


def _kept(statement: ast.stmt) -> bool:
    """Module-level statements the networks need: imports (torchvision's aside), definitions and
    constants; not the parser, prints, folders or anything after the classes."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        names = [alias.name for alias in statement.names]
        module = getattr(statement, "module", None) or ""
        return not any(part.startswith("torchvision") for part in [module, *names])
    if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
        return True
    if isinstance(statement, ast.Assign):
        return not ast.unparse(statement.value).startswith(("argparse.", "parser."))
    return False


def extract_networks(script: Path) -> str:
    """The script's networks as a module of the same lines: every statement up to its last
    class that the networks need, as written; every other line blank (so errors name the
    script's own line numbers), and ``opt = parser.parse_args()`` as the argparse defaults."""
    text = script.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    kept = [""] * len(lines)
    last_class = max(
        index for index, node in enumerate(tree.body) if isinstance(node, ast.ClassDef)
    )
    defaults = ", ".join(f"{key}={value!r}" for key, value in _argparse_defaults(tree).items())
    for node in tree.body[: last_class + 1]:
        first, last = node.lineno - 1, node.end_lineno or node.lineno
        if isinstance(node, ast.Assign) and "parse_args" in ast.unparse(node.value):
            kept[first] = f"import argparse; opt = argparse.Namespace({defaults})"
        elif _kept(node):
            kept[first:last] = lines[first:last]
    return "\n".join(kept) + "\n"


# -- 2-4. import, check, train --------------------------------------------------------------------


@dataclass
class Outcome:
    script: str
    imported: str = ""  # "yes", or the first error line
    equal: str = ""
    parity: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def _gx(*arguments: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GX, *arguments],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _first_error(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr + result.stdout).strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [f"exit {result.returncode}"])[-1]


def import_script(script: Script, checkout: Path, work: Path) -> tuple[Path, str]:
    """The import folder and "yes", or the folder and the first error."""
    folder = work / script.name
    networks_file = work / f"{script.name}_networks.py"
    networks_file.write_text(extract_networks(checkout / "implementations" / script.path))
    for network in script.networks:
        declarations = [part for text in network.inputs for part in ("--input", text)]
        result = _gx(
            "import", f"{networks_file}:{network.name}", *declarations, "--out", str(folder)
        )
        if result.returncode != 0:
            return folder, f"{network.role}: {_first_error(result)}"
    return folder, "yes"


def _load_class(networks_file: Path, name: str) -> Any:
    from gx.importer.loading import load_network

    module, _ = load_network(f"{networks_file}:{name}")
    return module


def _forward(module: Any, arguments: list, training: bool, masks: Any) -> list:
    """The module's outputs (a list), its dropouts drawing gx's masks in layer order."""
    import torch
    import torch.nn.functional as F

    def masked(channels: bool) -> Any:
        def dropout(x: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
            if not training or p == 0:
                return x
            drawn = masks.channel_mask(x.shape, p) if channels else masks.mask(x.shape, p)
            return x * torch.from_numpy(drawn)

        return dropout

    module.train(training)
    originals = F.dropout, F.dropout2d
    F.dropout, F.dropout2d = masked(False), masked(True)
    try:
        output = module(*arguments)
    finally:
        F.dropout, F.dropout2d = originals
    return list(output) if isinstance(output, tuple) else [output]


def check_equal(networks_file: Path, network: Network, seed: int = 0) -> dict[str, float]:
    """The imported network against the module it came from, on each backend, in training and
    eval mode: outputs and the gradients of sum(output * r) with respect to every parameter, as
    the worst share of what the float32 floor allows (gx.parity.agreement; PyTorch float64 the
    reference of the floor). Returns {"torch": worst, "jittor": worst}."""
    import numpy as np
    import torch

    from gx.backends import get_backend
    from gx.importer import import_network
    from gx.importer.network import example_inputs
    from gx.parity.agreement import allowed_difference, relative_norm
    from gx.spec import MaskSource

    torch.manual_seed(seed)
    module = _load_class(networks_file, network.name)
    declarations = dict(text.split("=", 1) for text in network.inputs)
    imported = import_network(module, declarations)
    weights = imported.weights(module.state_dict())
    saved = {key: value.clone() for key, value in module.state_dict().items()}
    arguments, inputs = example_inputs(imported.inputs, 8, seed=1)
    rng = np.random.default_rng(2)
    probes = [
        rng.standard_normal((8, *v.shape)).astype(np.float32) for v in imported.spec.output_values
    ]

    def gx_values(backend_name: str, training: bool, dtype: str = "float32") -> list[np.ndarray]:
        backend = get_backend(backend_name, "cpu", dtype)
        compiled = backend.build(imported.spec, MaskSource(5))
        backend.load_weights(compiled, imported.spec, weights)
        backend.set_training(compiled, training)
        outputs = compiled({key: backend.tensor(value) for key, value in inputs.items()})
        outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
        parameters = list(backend.state_tensors(compiled, imported.spec, True).values())
        total = sum(((o * backend.tensor(r)).sum() for o, r in zip(outputs, probes)), 0.0)
        gradients = backend.gradients(total, parameters)
        return [backend.numpy(value) for value in outputs + gradients]

    def module_values(training: bool) -> list[np.ndarray]:
        outputs = _forward(module, arguments, training, MaskSource(5))
        total = sum((o * torch.from_numpy(r)).sum() for o, r in zip(outputs, probes))
        parameters = dict(module.named_parameters())
        sources = [imported.weight_keys[key] for key in imported.weight_keys]
        gradients = torch.autograd.grad(total, [parameters[s] for s in sources if s in parameters])
        module.load_state_dict(saved)  # the running statistics the forward moved
        return [value.detach().numpy() for value in outputs + list(gradients)]

    worst = {"torch": 0.0, "jittor": 0.0}
    for training in (True, False):
        expected, exact = module_values(training), gx_values("torch", training, "float64")
        for backend_name in worst:
            for got, wanted, truth in zip(gx_values(backend_name, training), expected, exact):
                share = relative_norm(got, wanted) / allowed_difference(
                    relative_norm(wanted, truth)
                )
                worst[backend_name] = max(worst[backend_name], share)
    return worst


def parity(script: Script, folder: Path, steps: int, seeds: int, batch: int, data_root: str) -> str:
    overrides = [
        part
        for setting in ("data.split=test", f"train.batch_size={batch}", *script.settings)
        for part in ("--set", setting)
    ]
    result = _gx(
        "parity",
        str(folder / "experiment.yaml"),
        "--steps",
        str(steps),
        "--seeds",
        str(seeds),
        "--data-root",
        data_root,
        "--out",
        str(folder / "parity"),
        *overrides,
    )
    if result.returncode in (0, 1):
        verdicts = [line for line in result.stdout.splitlines() if "rounding floor" in line]
        return verdicts[-1].split(": ", 1)[-1] if verdicts else f"exit {result.returncode}"
    return _first_error(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of eriklindernoren/PyTorch-GAN")
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="the scripts' own batch: 64")
    parser.add_argument("--data-root", default=str(REPOSITORY.parent / "shared/data/mnist"))
    parser.add_argument("--work", type=Path, default=REPOSITORY / "runs" / "zoo")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the outcomes here too")
    arguments = parser.parse_args()
    chosen = set(filter(None, arguments.only.split(",")))
    arguments.work.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for script in SCRIPTS:
        if chosen and script.name not in chosen:
            continue
        started = time.monotonic()
        outcome = Outcome(script.name)
        if script.not_a_pair:
            outcome.imported = f"not a G/D pair: {script.not_a_pair}"
        else:
            folder, outcome.imported = import_script(script, arguments.checkout, arguments.work)
            if outcome.imported == "yes":
                networks_file = arguments.work / f"{script.name}_networks.py"
                shares = [check_equal(networks_file, network) for network in script.networks]
                worst = {name: max(share[name] for share in shares) for name in shares[0]}
                outcome.details["floor_shares"] = worst
                outcome.equal = "; ".join(
                    f"{name} {'yes' if share <= 1 else 'NO'} ({share:.2f} of the floor)"
                    for name, share in worst.items()
                )
            if outcome.imported == "yes" and not arguments.skip_parity:
                outcome.parity = parity(
                    script,
                    folder,
                    arguments.steps,
                    arguments.seeds,
                    arguments.batch,
                    arguments.data_root,
                )
        outcome.seconds = round(time.monotonic() - started, 1)
        outcomes.append(outcome)
        print(
            f"{script.name}: import {outcome.imported}; parity {outcome.parity or '-'}", flush=True
        )
    print("\n| script | import | equal to the original | parity |\n|---|---|---|---|")
    for outcome in outcomes:
        print(f"| {outcome.script} | {outcome.imported} | {outcome.equal} | {outcome.parity} |")
    if arguments.json:
        arguments.json.write_text(json.dumps([outcome.__dict__ for outcome in outcomes], indent=1))


if __name__ == "__main__":
    main()
