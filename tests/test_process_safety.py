"""No signal handler of Jittor's decides the fate of a gx process, and gx parity never waits
forever on its child reference.

Jittor's core installs C-level handlers that quick-exit the process when any child is killed,
on Ctrl-C, and on a crash in any thread (where exit() can deadlock on its compiler threads).
Each check runs in a fresh interpreter, so that a regression ends that interpreter, not pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest
from click.testing import CliRunner
from support import REPO_ROOT, experiment_file

import gx.backends.jittor as jittor_backend
from gx.backends import get_backend
from gx.backends.jittor import environment
from gx.cli import main
from gx.errors import GxError
from gx.parity import lockstep
from gx.parity.isa import ChildFailed, ChildTraining, lower_isa_environment

# Loading the backend compiles nothing new once the suite's first Jittor test has filled the
# kernel cache; a fresh interpreter needs a few seconds for the imports.
FRESH_PROCESS_TIMEOUT_S = 300
LOAD_JITTOR = "from gx.backends import get_backend; get_backend('jittor', 'cpu')\n"


def run_python(code: str, prelude: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=FRESH_PROCESS_TIMEOUT_S,
    )


@pytest.mark.jittor
@pytest.mark.slow
def test_a_killed_child_is_an_exit_status_not_the_end_of_the_process():
    finished = run_python(
        prelude=LOAD_JITTOR,
        code="""
        import subprocess
        child = subprocess.Popen(["sleep", "30"])
        child.kill()
        print("child ended with", child.wait())
    """,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == f"child ended with {-signal.SIGKILL}"


@pytest.mark.jittor
@pytest.mark.slow
def test_ctrl_c_raises_keyboard_interrupt_with_jittor_loaded():
    # Python's own Ctrl-C handler first, as in a terminal: a process started in the background
    # (CI, nohup ... &) inherits SIGINT ignored, and Python then leaves it ignored.
    finished = run_python(
        prelude="import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        + LOAD_JITTOR,
        code="""
        import os, signal
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "KeyboardInterrupt"


@pytest.mark.jittor
@pytest.mark.slow
def test_a_native_crash_in_a_thread_ends_the_process_at_once_with_its_stacks():
    # What Jittor's compiler thread did: a segfault off the main thread. Jittor's handler made it
    # call exit(1), which could wait forever on the compiler threads' mutex.
    finished = run_python(
        prelude="import faulthandler; faulthandler.enable()\n" + LOAD_JITTOR,
        code="""
        import ctypes, threading, time
        threading.Thread(target=ctypes.string_at, args=(0,), name="crasher").start()
        time.sleep(60)
        print("still running")
    """,
    )
    assert finished.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in finished.stderr
    assert "Caught segfault" not in finished.stderr
    assert finished.stdout == ""


def test_the_gx_command_prints_every_threads_stack_on_a_crash():
    finished = run_python("""
        import faulthandler
        from gx import cli
        cli.main = lambda: print("faulthandler enabled:", faulthandler.is_enabled())
        cli.entry_point()
    """)
    assert finished.stdout.strip() == "faulthandler enabled: True", finished.stderr


def child_request(mnist_root) -> dict:
    experiment = load_small("gan")
    return {
        "experiment": experiment.to_dict(),
        "steps": 2,
        "threads": 1,
        "data_root": str(mnist_root),
    }


def load_small(name: str):
    from gx.config import load_experiment

    return load_experiment(experiment_file(name), ["data.split=test", "train.batch_size=16"])


def lower_level_or_skip() -> dict[str, str]:
    capability = get_backend("torch", "cpu").describe()["cpu_capability"] or ""
    environment = lower_isa_environment(capability)
    if environment is None:
        pytest.skip(f"no lower instruction set below {capability!r}: gx parity starts no child")
    return environment


def test_a_child_reference_that_is_killed_is_named_with_its_signal(mnist_root):
    child = ChildTraining(child_request(mnist_root), lower_level_or_skip())
    child.process.kill()
    with pytest.raises(
        ChildFailed,
        match=r"lower instruction set \(child process \d+.*ended by "
        r"SIGKILL",
    ):
        child.answer(timeout=60)


@pytest.mark.slow
def test_a_child_reference_that_stalls_is_stopped_after_its_grace(mnist_root):
    child = ChildTraining(child_request(mnist_root), lower_level_or_skip())
    os.kill(child.process.pid, signal.SIGSTOP)
    with pytest.raises(
        ChildFailed,
        match=r"had not finished 1 s after this process's own "
        r"training, and was stopped",
    ):
        child.answer(timeout=1)
    assert child.process.returncode == -signal.SIGKILL


@pytest.mark.jittor
@pytest.mark.slow
def test_gx_parity_names_a_stalled_child_exits_2_and_keeps_its_figures(
    tmp_path, mnist_root, monkeypatch
):
    lower_level_or_skip()
    started = ChildTraining.__init__

    def start_then_stall(self, *arguments, **options):
        started(self, *arguments, **options)
        os.kill(self.process.pid, signal.SIGSTOP)

    monkeypatch.setattr(ChildTraining, "__init__", start_then_stall)
    monkeypatch.setattr(lockstep, "CHILD_GRACE_SECONDS", 1.0)
    monkeypatch.setattr(lockstep, "CHILD_GRACE_FACTOR", 0.0)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        [
            "parity",
            experiment_file("gan"),
            "--steps",
            "3",
            "--data-root",
            str(mnist_root),
            "--out",
            str(out),
            "--set",
            "data.split=test",
            "--set",
            "train.batch_size=16",
        ],
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "child process" in errors[0] and "had not finished 1 s" in errors[0]
    report = json.loads((out / "parity.json").read_text())
    assert report["within"] is None and report["verdict"].startswith("no verdict: ")
    assert len(report["seeds"]) == 1  # the seed whose reference stalled; no more were started
    losses = report["seeds"][0]["losses"]
    assert set(losses) == {"torch", "jittor", "torch_float64", "torch_rounded", "torch_threads"}
    assert all(len(losses[run]["d"]) == 3 for run in losses)


def test_jittor_compiles_on_the_calling_thread_unless_the_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("use_parallel_op_compiler", raising=False)
    assert environment.prepare("cpu")["use_parallel_op_compiler"] == "0"
    monkeypatch.setenv("use_parallel_op_compiler", "4")
    assert "use_parallel_op_compiler" not in environment.prepare("cpu")


@pytest.mark.jittor
@pytest.mark.slow
def test_the_loaded_jittor_has_no_parallel_compiler_threads():
    finished = run_python(
        prelude=LOAD_JITTOR,
        code="""
        import jittor
        print(jittor.flags.use_parallel_op_compiler)
    """,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "0"


def test_jittor_asking_for_a_new_process_is_one_error_not_a_silent_exit(monkeypatch):
    # What Jittor's import does after rebuilding a stale jit_utils library: sys.exit(0).
    class ExitsOnImport(types.ModuleType):
        def __getattr__(self, name: str):
            raise SystemExit(0)

    monkeypatch.setitem(sys.modules, "gx.backends.jittor.backend", ExitsOnImport("stale"))
    with pytest.raises(GxError, match="needs a new process .*run the same command again"):
        jittor_backend.create("cpu")
