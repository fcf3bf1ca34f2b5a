"""``gx parity``: do PyTorch and Jittor train the same, within float32's own rounding floor?"""

from gx.parity.lockstep import (
    DEFAULT_SEEDS,
    MARGIN_FRACTION,
    MARGIN_STEPS,
    THRESHOLDS,
    ParityIncomplete,
    ParityResult,
    SeedRun,
    majority_within,
    run_parity,
    within_floor,
)
from gx.parity.report import layer_table, loss_table, seed_table, shapes_agree, write_report

__all__ = [
    "DEFAULT_SEEDS",
    "MARGIN_FRACTION",
    "MARGIN_STEPS",
    "THRESHOLDS",
    "ParityIncomplete",
    "ParityResult",
    "SeedRun",
    "layer_table",
    "loss_table",
    "run_parity",
    "seed_table",
    "shapes_agree",
    "within_floor",
    "majority_within",
    "write_report",
]
