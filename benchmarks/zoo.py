"""The GAN zoo: gx import of the public PyTorch-GAN collection's networks, checked and trained.

    python benchmarks/zoo.py PATH/TO/PyTorch-GAN [--only gan,dcgan] [--steps 60] [--seeds 3]
                             [--data-root DIR] [--work DIR] [--json FILE]

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


def _mlp(z: str, image: str, *labels: str) -> tuple[Network, Network]:
    return (
        Network("generator", "Generator", (z, *labels)),
        Network("discriminator", "Discriminator", (image, *labels)),
    )


ADAM = ("optimizer.generator.betas=[0.5, 0.999]", "optimizer.discriminator.betas=[0.5, 0.999]")
G_THEN_D = ("train.order=g_then_d",)  # every script trains G, then D on (real + fake) / 2

SCRIPTS = (
    Script("gan", "gan/gan.py", _mlp("z=100", "image=1x28x28"), (*G_THEN_D, *ADAM)),
    Script(
        "cgan",
        "cgan/cgan.py",
        _mlp("z=100", "image=1x32x32", "label=class:10"),
        (*G_THEN_D, *ADAM, "train.loss=mse", "data.image_size=32"),
    ),
    Script(
        "dcgan",
        "dcgan/dcgan.py",
        _mlp("z=100", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
    ),
    Script(
        "acgan",
        "acgan/acgan.py",
        (
            Network("generator", "Generator", ("z=100", "label=class:10")),
            Network("discriminator", "Discriminator", ("image=1x32x32",)),
        ),
        (*G_THEN_D, *ADAM, "data.image_size=32", "train.class_loss=1.0"),
    ),
    Script(
        "infogan",
        "infogan/infogan.py",
        (
            Network("generator", "Generator", ("z=62", "label=onehot:10", "code=2")),
            Network("discriminator", "Discriminator", ("image=1x32x32",)),
        ),
        (*G_THEN_D, *ADAM, "train.loss=mse", "data.image_size=32"),
    ),
    Script(
        "lsgan",
        "lsgan/lsgan.py",
        _mlp("z=100", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "train.loss=mse", "data.image_size=32"),
    ),
    Script("wgan", "wgan/wgan.py", _mlp("z=100", "image=1x28x28"), G_THEN_D),
    Script("wgan_gp", "wgan_gp/wgan_gp.py", _mlp("z=100", "image=1x28x28"), (*G_THEN_D, *ADAM)),
    Script("wgan_div", "wgan_div/wgan_div.py", _mlp("z=100", "image=1x28x28"), (*G_THEN_D, *ADAM)),
    Script(
        "dragan",
        "dragan/dragan.py",
        _mlp("z=100", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
    ),
    Script(
        "began",
        "began/began.py",
        _mlp("z=62", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
    ),
    Script("bgan", "bgan/bgan.py", _mlp("z=100", "image=1x28x28"), (*G_THEN_D, *ADAM)),
    Script(
        "ebgan",
        "ebgan/ebgan.py",
        _mlp("z=62", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
    ),
    Script(
        "sgan",
        "sgan/sgan.py",
        _mlp("z=100", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
    ),
    Script(
        "softmax_gan",
        "softmax_gan/softmax_gan.py",
        _mlp("z=100", "image=1x28x28"),
        (*G_THEN_D, *ADAM),
    ),
    Script(
        "relativistic_gan",
        "relativistic_gan/relativistic_gan.py",
        _mlp("z=100", "image=1x32x32"),
        (*G_THEN_D, *ADAM, "data.image_size=32"),
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
            elif isinstance(keywords.get("action"), ast.Constant):
                defaults[name] = keywords["action"].value == "store_false"
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


def parity(script: Script, folder: Path, steps: int, seeds: int, data_root: str) -> str:
    overrides = [
        part
        for setting in ("data.split=test", "train.batch_size=64", *script.settings)
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
            if outcome.imported == "yes" and not arguments.skip_parity:
                outcome.parity = parity(
                    script, folder, arguments.steps, arguments.seeds, arguments.data_root
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
