"""The parity report: a terminal table, parity.json and a log-scale plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gx.parity.lockstep import (
    MARGIN_FRACTION,
    MARGIN_STEPS,
    THRESHOLDS,
    ParityResult,
    SeedRun,
    crossings,
)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def layer_table(result: ParityResult) -> str:
    header = (
        "network",
        "layer",
        "kind",
        "spec",
        "torch",
        "jittor",
        "out abs",
        "out rel",
        "out floor",
        "grad rel",
        "param grad rel",
        "agrees",
    )
    rows: list[tuple[str, ...]] = [header]
    for row in result.layers:
        shapes = [row.spec_shape, row.shapes.get("torch"), row.shapes.get("jittor")]
        rows.append(
            (
                row.network,
                row.layer,
                row.kind,
                *["x".join(map(str, s)) if s is not None else "?" for s in shapes],
                _number(row.output_abs),
                _number(row.output_rel),
                _number(row.output_floor),
                _number(row.grad_rel),
                _number(row.param_grad_rel),
                "yes" if row.agrees else "NO",
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def loss_table(result: ParityResult, every: int = 1) -> str:
    first = result.seeds[0]
    losses = first.losses
    lines = [
        f"{'step':>5}  {'D torch':>12} {'D jittor':>12}  {'G torch':>12} {'G jittor':>12}"
        f"  {'|diff| x-backend':>16} {'|diff| floor':>12}"
    ]
    for index in range(first.steps):
        if (index + 1) % every and index + 1 != first.steps:
            continue
        cells = [losses[run][key][index] for key in ("d", "g") for run in ("torch", "jittor")]
        lines.append(
            f"{index + 1:>5}  "
            + " ".join(f"{c:>12.6f}" if c is not None else f"{'-':>12}" for c in cells[:2])
            + "  "
            + " ".join(f"{c:>12.6f}" if c is not None else f"{'-':>12}" for c in cells[2:])
            + f"  {first.cross[index]:>16.2e} {first.floor[index]:>12.2e}"
        )
    return "\n".join(lines)


def seed_table(result: ParityResult) -> str:
    """Each seed's first step over every threshold, torch vs jittor against its floor."""
    thresholds = " / ".join(f"{t:g}" for t in THRESHOLDS)
    lines = [f"first step over {thresholds}, torch vs jittor against the floor:"]
    lines += [f"  {run.summary()}" for run in result.seeds]
    lines.append(f"  within on {result.seeds_within} of {len(result.seeds)} seeds")
    return "\n".join(lines)


def shapes_agree(result: ParityResult) -> bool:
    return all(
        all(shape == row.spec_shape for shape in row.shapes.values()) for row in result.layers
    )


def _seed_document(run: SeedRun) -> dict[str, Any]:
    far = {"far_float32": crossings(run.far)} if run.far else {}
    return {
        "seed": run.seed,
        "steps": run.steps,
        "within": run.within,
        "stopped_early": run.stopped_early,
        "first_step_over": {
            "cross_backend": crossings(run.cross),
            "floor": crossings(run.floor),
            **{f"floor_{name}": crossings(curve) for name, curve in run.floors.items()},
            **far,
        },
        "losses": run.losses,
        "cross_difference": run.cross,
        "floor_difference": run.floor,
        "floor_differences": run.floors,
        **({"far_difference": run.far} if run.far else {}),
    }


def write_report(result: ParityResult, folder: str | Path, incomplete: str = "") -> Path:
    """parity.json and parity.png in ``folder``; ``incomplete`` says why a run is missing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "experiment": result.experiment,
        "precision": result.precision,
        "steps": result.steps,
        "within": result.within,
        "verdict": result.verdict_line(),
        "rule": {
            "thresholds": list(THRESHOLDS),
            "margin_steps": MARGIN_STEPS,
            "margin_fraction": MARGIN_FRACTION,
            "seeds": len(result.seeds),
            "verdict": "within on most seeds",
        },
        "seeds_within": result.seeds_within,
        "machine": result.machine,
        "devices": result.devices,
        "stopped_early": result.stopped_early,
        "layers": [row.as_dict() for row in result.layers],
        "seeds": [_seed_document(run) for run in result.seeds],
    }
    if incomplete:  # the seeds judged so far cannot make the majority a verdict needs
        document.update(within=None, verdict=f"no verdict: {incomplete}", incomplete=incomplete)
    (folder / "parity.json").write_text(json.dumps(document, indent=1))
    _plot(result, folder / "parity.png")
    return folder


_REFERENCE_LABELS = {
    "torch_float64": "float64 between the layers",
    "torch_rounded": "weights rounded the other way",
    "torch_threads": "another thread count",
    "torch_isa": "a lower instruction set",
}


def _log_curve(curve: list[float]) -> list[float]:
    tiny = 1e-12  # log scale: an exact match would otherwise vanish from the plot
    return [max(value, tiny) for value in curve]


def _plot(result: ParityResult, path: Path) -> None:
    """Losses and differences of the experiment's own seed; the other seeds' cross-backend
    difference and floor as thin lines, so that the spread between seeds is visible."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    first = result.seeds[0]
    steps = list(range(1, first.steps + 1))
    figure = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    for backend, style in (("torch", "-"), ("jittor", "--")):
        for key, colour in (("d", "tab:blue"), ("g", "tab:orange")):
            values = [v if v is not None else float("nan") for v in first.losses[backend][key]]
            top.plot(
                steps,
                values[: first.steps],
                style,
                color=colour,
                label=f"{key.upper()} loss, {backend}",
            )
    top.set_ylabel("loss")
    top.legend(ncol=2, fontsize=8)
    top.set_title(
        f"gx parity: {result.experiment}, seed {first.seed}"
        + (f" (and {len(result.seeds) - 1} more, thin)" if len(result.seeds) > 1 else "")
    )
    for index, run in enumerate(result.seeds[1:]):
        more = list(range(1, run.steps + 1))
        bottom.semilogy(
            more,
            _log_curve(run.cross),
            color="tab:red",
            linewidth=0.6,
            alpha=0.5,
            label="other seeds: torch vs jittor" if index == 0 else None,
        )
        bottom.semilogy(
            more,
            _log_curve(run.floor),
            color="tab:gray",
            linewidth=0.6,
            alpha=0.5,
            label="other seeds: the floor (largest reference)" if index == 0 else None,
        )
    bottom.semilogy(
        steps,
        _log_curve(first.cross),
        color="tab:red",
        label=f"|loss difference| torch vs jittor ({result.precision})",
    )
    for (name, curve), style in zip(first.floors.items(), ("-", "--", ":", "-.")):
        bottom.semilogy(
            steps,
            _log_curve(curve),
            style,
            color="tab:gray",
            label=f"rounding floor: torch {result.precision} vs {_REFERENCE_LABELS[name]}",
        )
    if first.far:
        bottom.semilogy(
            steps,
            _log_curve(first.far),
            color="tab:green",
            label=f"far reference: torch {result.precision} vs torch float32 (not the floor)",
        )
    for threshold in THRESHOLDS:
        bottom.axhline(threshold, color="black", linewidth=0.5, linestyle=":")
    bottom.set_xlabel("step")
    bottom.set_ylabel("max(|dD|, |dG|)")
    bottom.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
