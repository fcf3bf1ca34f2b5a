"""gx: write a GAN once as a backend-neutral spec, train it on PyTorch or Jittor.

The Python API is what the ``gx`` commands call (docs/python.md, "From Python")::

    experiment = gx.load_experiment("experiments/cgan.yaml", ["train.max_steps=200"])
    result = gx.run_experiment(experiment, gx.RunOptions(on_step=print))      # gx run
    images = gx.sample(result.folder, labels=[3, 1, 4])                        # gx generate
    strip = gx.strip_from_run("13800138000", result.folder)                    # gx strip
    scores = gx.evaluate_run(result.folder, n=1000)                            # gx eval

Importing gx imports neither framework, and each name above is loaded on first use, so
``import gx`` (and every ``gx --help``) stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "load_experiment": "gx.config",
    "RunOptions": "gx.train.run",
    "run_experiment": "gx.train.run",
    "sample": "gx.tools.generate",
    "strip_from_run": "gx.tools.strip",
    "save_strip": "gx.tools.strip",
    "evaluate_run": "gx.evaluate.quality",
    "export_generator": "gx.tools.export",
    "import_module": "gx.importer",
    "check_parity": "gx.parity.check",
    "GxError": "gx.errors",
}

# written out (not sorted(_EXPORTS)) so that linters and type checkers can read it
__all__ = [
    "GxError",
    "RunOptions",
    "check_parity",
    "evaluate_run",
    "export_generator",
    "import_module",
    "load_experiment",
    "run_experiment",
    "sample",
    "save_strip",
    "strip_from_run",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ loads them
    from gx.config import load_experiment
    from gx.errors import GxError
    from gx.evaluate.quality import evaluate_run
    from gx.importer import import_module
    from gx.parity.check import check_parity
    from gx.tools.export import export_generator
    from gx.tools.generate import sample
    from gx.tools.strip import save_strip, strip_from_run
    from gx.train.run import RunOptions, run_experiment


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gx' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The API and the version: what a notebook's completion should offer."""
    return [*__all__, "__version__"]
