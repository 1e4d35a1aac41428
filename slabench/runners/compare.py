"""`slabench compare`: one variant against baseline mixers under identical conditions.

The comparison grid takes a grid's tasks and [train] table unchanged (same budgets, lrs and
seeds for everyone) and replaces its models by the variant and the baselines, all at the
backbone parameters (d_model, n_layers, n_heads, mlp, ...) of the grid's first model; each
mixer keeps its own default options. Cells are aggregated as in leaderboards (best lr on
validation, mean +- 95% t interval over seeds). Per task the variant WINS against a baseline
when its interval lies entirely above the baseline's, LOSES when entirely below, else TIES
(with one seed the intervals are points: use 3+ seeds for verdicts that mean something).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from slabench.errors import SlabenchError


def with_models(grid: dict[str, Any], mixers: list[str]) -> dict[str, Any]:
    """`grid` with its models replaced by `mixers`, all at the backbone parameters (d_model,
    n_layers, ...) of its first model; each mixer keeps its own default options."""
    from slabench.models import Backbone

    models = grid.get("models") or [{}]
    backbone = {k: v for k, v in models[0].items() if k in Backbone.__dataclass_fields__}
    return {**grid, "models": [{"name": m, **backbone} for m in dict.fromkeys(mixers)]}


def compare_grid(grid: dict[str, Any], variant: str, against: list[str]) -> dict[str, Any]:
    """The grid dict comparing `variant` with `against` on `grid`'s tasks and train settings."""
    if not against:
        raise SlabenchError("--against: give at least one baseline mixer, e.g. --against gla,attention")
    if variant in against:
        raise SlabenchError(f"--against: '{variant}' is the variant itself; list only baselines")
    stem = variant.rsplit(":", 1)[-1] if ":" in variant else variant
    return with_models({
        "name": f"compare-{stem}",
        "description": f"{variant} vs {', '.join(against)} on the tasks of grid '{grid.get('name')}'",
        "train": grid.get("train", {}),
        "tasks": grid.get("tasks"),
        "models": grid.get("models"),
    }, [variant, *against])


def _bounds(row: dict[str, Any]) -> tuple[float, float]:
    h = 0.0 if math.isnan(row["acc_ci"]) else row["acc_ci"]
    return row["acc"] - h, row["acc"] + h


def verdict(variant: dict[str, Any], baseline: dict[str, Any]) -> str:
    (vlo, vhi), (blo, bhi) = _bounds(variant), _bounds(baseline)
    return "win" if vlo > bhi else "loss" if vhi < blo else "tie"


def summarise(board: dict[str, Any], variant: str, against: list[str]) -> dict[str, Any]:
    """Per task of `board` (from `aggregate`): every model's row, and the variant's delta and
    verdict against each baseline."""
    tasks = []
    totals: dict[str, dict[str, int]] = {b: {"win": 0, "tie": 0, "loss": 0} for b in against}
    for task, rows in board["tasks"].items():
        # Several backbone sizes (a grid sweeping d_model) compare size by size.
        by_size: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            by_size[tuple(sorted(r["model_params"].items()))][r["mixer"]] = r
        for size, by_mixer in by_size.items():
            v = by_mixer.get(variant)
            versus = []
            for b in against:
                if v is None or b not in by_mixer:
                    continue
                row = by_mixer[b]
                outcome = verdict(v, row)
                totals[b][outcome] += 1
                versus.append({"baseline": b, "delta": v["acc"] - row["acc"], "variant_ci": v["acc_ci"],
                               "baseline_ci": row["acc_ci"], "verdict": outcome})
            models = [by_mixer[m] for m in [variant, *against] if m in by_mixer]
            tasks.append({"task": task, "backbone": dict(size), "models": models, "versus": versus})
    return {"variant": variant, "against": against, "ranked_by": board["ranked_by"], "tasks": tasks,
            "totals": totals, "failures": board["failures"], "runs": board["runs"]}


def _pct(x: float | None, ci: float | None = None) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{100 * x:.1f}" + ("" if ci is None or math.isnan(ci) else f" ± {100 * ci:.1f}")


def _size(x: int | None) -> str:
    return "n/a" if x is None else f"{x:,}"


MODEL_COLUMNS = ["mixer", "params", "state size", "acc % (95% CI)", "exact %", "seeds"]
VERSUS_COLUMNS = ["variant vs", "Δ acc (pp)", "verdict"]


def model_cells(r: dict[str, Any]) -> list[str]:
    return [r["mixer"], f"{r['params']:,}" if r["params"] else "-", _size(r["state_size"]), _pct(r["acc"], r["acc_ci"]),
            _pct(r["exact"]), str(r["seeds"])]


def versus_cells(v: dict[str, Any]) -> list[str]:
    return [v["baseline"], f"{100 * v['delta']:+.1f}", v["verdict"]]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]


def to_markdown(summary: dict[str, Any], plot: Path | None) -> str:
    out = [f"# Compare: {summary['variant']}", "",
           (f"Generated by `slabench compare` from {summary['runs']} run records. Accuracy: {summary['ranked_by']}; "
            "± is the 95% t interval over seeds. Win/loss: the variant's interval lies entirely above/below the "
            "baseline's; otherwise a tie."), "", "## Win / tie / loss per baseline", ""]
    out += _md_table(["baseline", "win", "tie", "loss"],
                     [[b, str(t["win"]), str(t["tie"]), str(t["loss"])] for b, t in summary["totals"].items()]) + [""]
    for t in summary["tasks"]:
        size = ", ".join(f"{k}={v}" for k, v in t["backbone"].items())
        out += [f"## {t['task']}", "", f"Backbone: {size}.", ""]
        out += _md_table(MODEL_COLUMNS, [model_cells(r) for r in t["models"]]) + [""]
        out += _md_table(VERSUS_COLUMNS, [versus_cells(v) for v in t["versus"]]) + [""]
    if plot is not None:
        out += ["## Plot", "", f"![{plot.stem}]({plot.name})", ""]
    if summary["failures"]:
        out += ["## Runs that did not finish ok", ""] + [f"- {f['model']} | {f['task']} | seed {f['seed']}: "
                                                          f"{f['status']} {(f['error'] or '')[:200]}" for f in summary["failures"]] + [""]
    return "\n".join(out)


def plot_compare(summary: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars: one group per task (and backbone), one bar per mixer, 95% CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary["tasks"]:
        return None
    mixers = [summary["variant"], *summary["against"]]
    n = len(summary["tasks"])
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * n * len(mixers) / 2), 4.2))
    width = 0.8 / len(mixers)
    for i, m in enumerate(mixers):
        xs, ys, errs = [], [], []
        for j, t in enumerate(summary["tasks"]):
            row = next((r for r in t["models"] if r["mixer"] == m), None)
            if row is not None:
                xs.append(j + (i - (len(mixers) - 1) / 2) * width)
                ys.append(100 * row["acc"])
                errs.append(0 if math.isnan(row["acc_ci"]) else 100 * row["acc_ci"])
        label = m if len(m) < 40 else "…" + m[-38:]
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(range(n), [t["task"] if len(t["task"]) < 40 else t["task"][:38] + "…" for t in summary["tasks"]],
                  fontsize=7, rotation=10)
    ax.set(ylabel="test accuracy %", ylim=(0, 102), title=f"{summary['variant']} vs baselines")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_compare(records: list[dict[str, Any]], variant: str, against: list[str], out_dir: Path) -> tuple[dict, dict]:
    """Write compare.md, compare.json, compare.png (and the full leaderboard) into out_dir."""
    from slabench.runners.leaderboard import aggregate, write_leaderboard

    out_dir.mkdir(parents=True, exist_ok=True)
    board = aggregate(records)
    summary = summarise(board, variant, against)
    plot = plot_compare(summary, out_dir / "compare.png")
    paths = {"md": out_dir / "compare.md", "json": out_dir / "compare.json"}
    paths["md"].write_text(to_markdown(summary, plot))
    paths["json"].write_text(json.dumps(summary, indent=1, default=str))
    if plot is not None:
        paths["png"] = plot
    write_leaderboard(board, out_dir, "leaderboard")
    return summary, paths
