"""The framework boundary: gx's core never imports a framework, and a missing one is one message.

Every check runs in a fresh interpreter, since this test process has long imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "jittor")
INSTALL_COMMANDS = {"torch": "pip install torch", "jittor": "pip install 'jittor>=1.3.8,<1.4'"}


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json_line(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_core_modules_and_cli_import_no_framework() -> None:
    result = run_python("""
        import json, sys
        import gx, gx.cli, gx.spec, gx.models, gx.config, gx.data, gx.images, gx.checkpoint
        import gx.backends, gx.tools.summary, gx.train.run
        from click.testing import CliRunner
        from gx.cli import main

        runner = CliRunner()
        calls = [["--help"], ["run", "--help"], ["summary", "experiments/cdcgan.yaml"]]
        calls += [[name, "--help"] for name in sorted(main.commands)]
        codes = {" ".join(args): runner.invoke(main, args).exit_code for args in calls}
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "jittor"))
        print(json.dumps({"codes": codes, "loaded": loaded}))
    """)
    report = last_json_line(result)
    assert report["loaded"] == []
    assert report["codes"]["summary experiments/cdcgan.yaml"] == 0
    assert set(report["codes"].values()) == {0}, report["codes"]
    assert {"--help", "run --help", "summary --help"} <= set(report["codes"])


def test_summary_output_without_backend_is_the_spec_table() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gx.cli import main; main()",
            "summary",
            "experiments/cdcgan.yaml",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "total parameters: 1,632,640" in result.stdout
    # the seed discriminator (218,433) plus the flagship's batch norms, 2 x (64 + 128), and its
    # projection term's class vectors, 10 x 128 x 4 x 4
    assert "total parameters: 239,297" in result.stdout


HIDE = "import sys; sys.modules[{name!r}] = None  # as if {name} were not installed\n"

USE_OTHER_BACKEND = """
import json, sys
import numpy as np
from gx.backends import get_backend
from gx.errors import BackendUnavailable
from gx.spec import ModelSpec

try:
    get_backend({hidden!r}, "cpu")
    message = None
except BackendUnavailable as error:
    message = str(error)

backend = get_backend({other!r}, "cpu")
spec = ModelSpec.from_dict({{"inputs": {{"x": [3]}}, "layers": [
    {{"name": "fc", "kind": "linear", "out": 2}},
    {{"name": "act", "kind": "leaky_relu", "slope": 0.5}}]}})
module = backend.compile(spec, 0)
output = backend.numpy(module({{"x": backend.tensor(np.ones((2, 3), np.float32))}}))
print(json.dumps({{"message": message, "output": output.tolist(),
                  "hidden_loaded": sys.modules.get({hidden!r}) is not None}}))
"""


@pytest.mark.jittor
@pytest.mark.parametrize("hidden,other", [("torch", "jittor"), ("jittor", "torch")])
@pytest.mark.slow
def test_missing_framework_gives_one_message_and_the_other_still_works(
    hidden: str, other: str
) -> None:
    result = run_python(
        HIDE.format(name=hidden) + USE_OTHER_BACKEND.format(hidden=hidden, other=other)
    )
    report = last_json_line(result)
    message = report["message"]
    assert message is not None and "\n" not in message
    assert f"the {hidden} backend needs {hidden}, which is not installed" in message
    assert f"install it with: {INSTALL_COMMANDS[hidden]}" in message
    assert report["hidden_loaded"] is False
    # The working backend computed something real: leaky_relu(W x + b) for the seeded weights.
    import numpy as np

    from gx.spec import ModelSpec, initial_state

    spec = ModelSpec.from_dict(
        {
            "inputs": {"x": [3]},
            "layers": [
                {"name": "fc", "kind": "linear", "out": 2},
                {"name": "act", "kind": "leaky_relu", "slope": 0.5},
            ],
        }
    )
    weights = initial_state(spec, 0)
    linear = np.ones((2, 3)) @ weights["fc.weight"].T.astype(np.float64) + weights["fc.bias"]
    # A float32 sum of 3 products and a bias is within gamma(4) * sum|terms| = 2.4e-7 * sum|terms|
    # in any order (Higham); for the seed-0 weights sum|terms| <= 3.05 |Wx + b|: <= 7.3e-7.
    np.testing.assert_allclose(
        report["output"], np.where(linear > 0, linear, 0.5 * linear), rtol=1e-6
    )


@pytest.mark.parametrize("hidden", FRAMEWORKS)
def test_cli_names_the_missing_framework(hidden: str) -> None:
    code = HIDE.format(name=hidden) + textwrap.dedent(f"""
        import sys
        sys.argv = ["gx", "summary", "experiments/cdcgan.yaml", "--backend", {hidden!r}]
        from gx.cli import main
        main()
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: the {hidden} backend needs {hidden}, which is not installed"
    )
    assert "install it with: pip install" in lines[0]


def cuda_command(backend: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gx.cli import main; main()",
            "summary",
            "experiments/cdcgan.yaml",
            "--backend",
            backend,
            "--device",
            "cuda",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cuda_request_without_a_gpu_is_one_line_error_torch() -> None:
    import torch

    result = cuda_command("torch")
    if torch.cuda.is_available():  # on a GPU machine the same command must simply work
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: --device cuda was asked for, but torch sees no CUDA "
        "GPU on this machine; use --device cpu (or auto)"
    )
    assert result.stdout == ""


@pytest.mark.jittor
def test_cuda_request_without_a_gpu_is_one_line_error_jittor() -> None:
    from gx.backends.jittor import environment

    result = cuda_command("jittor")
    if environment.cuda_runtime_present():
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: --device cuda was asked for, but jittor sees no CUDA "
        "GPU on this machine; use --device cpu (or auto)"
    )
