"""The parity report: a terminal table, parity.json and a log-scale plot."""

from __future__ import annotations

import json
from pathlib import Path

from gx.parity.lockstep import MARGIN_FRACTION, MARGIN_STEPS, THRESHOLDS, ParityResult, first_over


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def layer_table(result: ParityResult) -> str:
    header = ("network", "layer", "kind", "spec", "torch", "jittor", "out abs", "out rel",
              "grad rel", "param grad rel")
    rows = [header]
    for row in result.layers:
        shapes = [row.spec_shape, row.shapes.get("torch"), row.shapes.get("jittor")]
        rows.append((row.network, row.layer, row.kind,
                     *["x".join(map(str, s)) if s is not None else "?" for s in shapes],
                     _number(row.output_abs), _number(row.output_rel), _number(row.grad_rel),
                     _number(row.param_grad_rel)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def loss_table(result: ParityResult, every: int = 1) -> str:
    losses = result.losses
    lines = [f"{'step':>5}  {'D torch':>12} {'D jittor':>12}  {'G torch':>12} {'G jittor':>12}"
             f"  {'|diff| x-backend':>16} {'|diff| floor':>12}"]
    for index in range(result.steps):
        if (index + 1) % every and index + 1 != result.steps:
            continue
        cells = [losses[run][key][index] for key in ("d", "g") for run in ("torch", "jittor")]
        lines.append(f"{index + 1:>5}  " + " ".join(f"{c:>12.6f}" if c is not None else f"{'-':>12}"
                                                    for c in cells[:2]) + "  "
                     + " ".join(f"{c:>12.6f}" if c is not None else f"{'-':>12}" for c in cells[2:])
                     + f"  {result.cross[index]:>16.2e} {result.floor[index]:>12.2e}")
    return "\n".join(lines)


def shapes_agree(result: ParityResult) -> bool:
    return all(all(shape == row.spec_shape for shape in row.shapes.values())
               for row in result.layers)


def write_report(result: ParityResult, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "experiment": result.experiment, "steps": result.steps, "within": result.within,
        "verdict": result.verdict_line(), "rule": {"thresholds": list(THRESHOLDS),
                                                   "margin_steps": MARGIN_STEPS,
                                                   "margin_fraction": MARGIN_FRACTION},
        "first_step_over": {
            "cross_backend": result.first_cross, "floor": result.first_floor,
            **{f"floor_{name}": {f"{t:g}": first_over(curve, t) for t in THRESHOLDS}
               for name, curve in result.floors.items()}},
        "machine": result.machine, "devices": result.devices,
        "stopped_early": result.stopped_early,
        "layers": [row.as_dict() for row in result.layers],
        "losses": result.losses, "cross_difference": result.cross,
        "floor_difference": result.floor,
        "floor_differences": result.floors,
    }
    (folder / "parity.json").write_text(json.dumps(document, indent=1))
    _plot(result, folder / "parity.png")
    return folder


_REFERENCE_LABELS = {"torch_float64": "float64",
                     "torch_threads": "float32 at another thread count"}


def _plot(result: ParityResult, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = list(range(1, result.steps + 1))
    figure = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    for run, style in (("torch", "-"), ("jittor", "--")):
        for key, colour in (("d", "tab:blue"), ("g", "tab:orange")):
            values = [v if v is not None else float("nan") for v in result.losses[run][key]][:result.steps]
            top.plot(steps, values, style, color=colour, label=f"{key.upper()} loss, {run}")
    top.set_ylabel("loss")
    top.legend(ncol=2, fontsize=8)
    top.set_title(f"gx parity: {result.experiment}")
    tiny = 1e-12  # log scale: an exact match would otherwise vanish from the plot
    bottom.semilogy(steps, [max(v, tiny) for v in result.cross], color="tab:red",
                    label="|loss difference| torch vs jittor (float32)")
    for (name, curve), style in zip(result.floors.items(), ("-", "--", ":")):
        bottom.semilogy(steps, [max(v, tiny) for v in curve], style, color="tab:gray",
                        label=f"rounding floor: torch float32 vs {_REFERENCE_LABELS[name]}")
    for threshold in THRESHOLDS:
        bottom.axhline(threshold, color="black", linewidth=0.5, linestyle=":")
    bottom.set_xlabel("step")
    bottom.set_ylabel("max(|dD|, |dG|)")
    bottom.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
