"""``gx parity``: do PyTorch and Jittor train the same, within float32's own rounding floor?"""

from gx.parity.lockstep import (MARGIN_FRACTION, MARGIN_STEPS, THRESHOLDS, ParityResult,
                                run_parity, within_floor)
from gx.parity.report import layer_table, loss_table, shapes_agree, write_report

__all__ = ["MARGIN_FRACTION", "MARGIN_STEPS", "THRESHOLDS", "ParityResult", "layer_table",
           "loss_table", "run_parity", "shapes_agree", "within_floor", "write_report"]
