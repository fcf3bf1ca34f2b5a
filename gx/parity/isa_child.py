"""The child process of the lower-instruction-set reference (gx.parity.isa starts it): trains
the requested experiment in PyTorch, in its precision, with the lockstep loop and writes back
its losses.

    python -m gx.parity.isa_child REQUEST.json ANSWER.json
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gx.backends import get_backend
from gx.config import experiment_from_dict
from gx.errors import GxError
from gx.machine import ENVIRONMENT
from gx.parity.lockstep import train_in_lockstep


def _answer(request: Mapping[str, Any]) -> dict[str, Any]:
    experiment = experiment_from_dict(request["experiment"], "the parity request")
    backend = get_backend("torch", "cpu", precision=experiment.train.precision)
    backend.strict_math()
    threads = {"reference": request["threads"]}
    training = train_in_lockstep(
        experiment, {"reference": backend}, threads, request["steps"], request["data_root"]
    )
    return {
        "losses": training.losses["reference"],
        "steps": training.steps,
        "stopped_early": training.stopped_early,
        "device": {
            **backend.describe(),
            "threads": request["threads"],
            "environment": {name: os.environ[name] for name in ENVIRONMENT if name in os.environ},
        },
    }


def main(arguments: list[str]) -> None:
    asked, answer = arguments
    try:
        Path(answer).write_text(json.dumps(_answer(json.loads(Path(asked).read_text()))))
    except GxError as error:  # the parent shows the last lines of this process's errors
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
