"""`slabench compare`: one variant against baseline mixers under identical conditions.

The comparison grid takes a grid's tasks and [train] table unchanged (same budgets, lrs and
seeds for everyone) and replaces its models by the variant and the baselines, all at the
backbone parameters (d_model, n_layers, n_heads, mlp, ...) of the grid's first model; each
mixer keeps its own default options. Cells are aggregated as in leaderboards (best lr on
validation, per-seed accuracies, solve rate, bootstrap interval of the mean). Per task the
variant WINS against a baseline when the leaderboards' exact test (paired by seed, since the
comparison grid gives every mixer the same seeds) rejects equal accuracy at 5% with the variant
ahead, LOSES when it rejects with the variant behind, else TIES. With n paired seeds the smallest
p is 2^(1-n): fewer than 6 seeds can only tie.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from slabench.errors import SlabenchError
from slabench.models.arms import ARM_OPTIONS, split_arm, written_arm
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.leaderboard_files import solved_cell
from slabench.runners.output import md_table, pct, plt, save_figure, yerr


def with_models(grid: dict[str, Any], mixers: list[str]) -> dict[str, Any]:
    """`grid` with its models replaced by `mixers` (mixers or arms, `models.arms`: `sla-gla/head-norm`),
    all at the backbone parameters (d_model, n_layers, ...) of its first model; each mixer keeps
    its own default options but those its arm label sets (checked as any model's options, when
    the grid is expanded)."""
    from slabench.models import Backbone

    models = grid.get("models") or [{}]
    backbone = {k: v for k, v in models[0].items() if k in Backbone.__dataclass_fields__}
    arms = [split_arm(m) for m in dict.fromkeys(mixers)]
    return {**grid, "models": [{"name": m, **backbone, **options} for m, options in arms]}


def _label(name: str) -> str:
    """A mixer's or arm's name as its rows are labelled (`written_arm`): tags in one order."""
    return written_arm(*split_arm(name))


def compare_grid(grid: dict[str, Any], variant: str, against: list[str]) -> dict[str, Any]:
    """The grid dict comparing `variant` with `against` on `grid`'s tasks and train settings."""
    if not against:
        raise SlabenchError("--against: give at least one baseline mixer, e.g. --against gla,attention")
    if _label(variant) in [_label(b) for b in against]:
        raise SlabenchError(f"--against: '{variant}' is the variant itself; list only baselines")
    stem = variant.rsplit(":", 1)[-1] if ":" in variant else variant
    return with_models(
        {
            "name": f"compare-{stem}",
            "description": f"{variant} vs {', '.join(against)} on the tasks of grid '{grid.get('name')}'",
            "train": grid.get("train", {}),
            "tasks": grid.get("tasks"),
            "models": grid.get("models"),
        },
        [variant, *against],
    )


def summarise(board: dict[str, Any], variant: str, against: list[str]) -> dict[str, Any]:
    """Per task of `board` (from `aggregate`): every model's row, and the variant's delta and
    verdict against each baseline. A row's mixer is its arm label (`sla-gla/head-norm`)."""
    variant, against = _label(variant), [_label(b) for b in against]
    tasks = []
    totals: dict[str, dict[str, int]] = {b: {"win": 0, "tie": 0, "loss": 0} for b in against}
    for task, rows in board["tasks"].items():
        # Several backbone sizes (a grid sweeping d_model) compare size by size; arms of one mixer
        # differ in their options, not in size.
        by_size: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            size = tuple(sorted((k, v) for k, v in r["model_params"].items() if k not in ARM_OPTIONS))
            name = written_arm(r["mixer"], r["model_params"])
            by_size[size][name] = {**r, "mixer": name}
        for size, by_mixer in by_size.items():
            v = by_mixer.get(variant)
            versus = []
            for b in against:
                if v is None or b not in by_mixer:
                    continue
                row = by_mixer[b]
                outcome, test = stats.verdict(v, row)
                totals[b][outcome] += 1
                versus.append(
                    {
                        "baseline": b,
                        "delta": v["acc"] - row["acc"],
                        "test": test["test"],
                        "p": test["p"],
                        "pairs": test["n"],
                        "verdict": outcome,
                    }
                )
            models = [by_mixer[m] for m in [variant, *against] if m in by_mixer]
            missing = [m for m in [variant, *against] if m not in by_mixer]  # every run failed: no row
            tasks.append({"task": task, "backbone": dict(size), "models": models, "versus": versus, "missing": missing})
    return {
        "variant": variant,
        "against": against,
        "ranked_by": board["ranked_by"],
        "tasks": tasks,
        "totals": totals,
        "failures": board["failures"],
        "warnings": board["warnings"],
        "runs": board["runs"],
    }


MODEL_COLUMNS = ["mixer", "params", "state size", "solved (95% CI)", "acc % (95% CI)", "exact %", "seeds"]
VERSUS_COLUMNS = ["variant vs", "Δ acc (pp)", "test", "p", "verdict"]


def model_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["mixer"],
        f"{r['params']:,}" if r["params"] else "-",
        "n/a" if r["state_size"] is None else f"{r['state_size']:,}",
        solved_cell(r),
        pct(r["acc"], r["acc_lo"], r["acc_hi"]),
        pct(r["exact"]),
        str(r["seeds"]),
    ]


def versus_cells(v: dict[str, Any]) -> list[str]:
    return [v["baseline"], f"{100 * v['delta']:+.1f}", f"{v['test']} (n={v['pairs']})", f"{v['p']:.3g}", v["verdict"]]


def to_markdown(summary: dict[str, Any], plot: Path | None) -> str:
    out = [
        f"# Compare: {summary['variant']}",
        "",
        (
            f"Generated by `slabench compare` from {summary['runs']} run records. Rows: {summary['ranked_by']}; "
            "intervals are 95% (Wilson for solve rates, bootstrap over seeds for mean accuracy). Win / loss: an "
            "exact permutation test (paired by seed) rejects equal accuracy at 5%, the variant ahead / behind; "
            "otherwise a tie. With n paired seeds the smallest p is 2^(1-n), so fewer than 6 seeds can only tie."
        ),
        "",
        "## Win / tie / loss per baseline",
        "",
    ]
    out += [
        md_table(
            ["baseline", "win", "tie", "loss"],
            [[b, str(t["win"]), str(t["tie"]), str(t["loss"])] for b, t in summary["totals"].items()],
        ),
        "",
    ]
    for t in summary["tasks"]:
        size = ", ".join(f"{k}={v}" for k, v in t["backbone"].items())
        out += [f"## {t['task']}", "", f"Backbone: {size}.", ""]
        out += [md_table(MODEL_COLUMNS, [model_cells(r) for r in t["models"]]), ""]
        if t["missing"]:
            out += [f"No result for {', '.join(t['missing'])}: every run failed (below), so nothing to compare.", ""]
        out += [md_table(VERSUS_COLUMNS, [versus_cells(v) for v in t["versus"]]), ""]
    if plot is not None:
        out += ["## Plot", "", f"![{plot.stem}]({plot.name})", ""]
    if summary["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in summary["warnings"]] + [""]
    if summary["failures"]:
        out += (
            ["## Runs that did not finish ok", ""]
            + [
                f"- {f['model']} | {f['task']} | seed {f['seed']}: {f['status']} {(f['error'] or '')[:200]}"
                for f in summary["failures"]
            ]
            + [""]
        )
    return "\n".join(out)


def plot_compare(summary: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars: one group per task (and backbone), one bar per mixer with its 95% bootstrap
    interval, and every seed as a dot on its bar."""
    if not summary["tasks"]:
        return None
    mixers = [summary["variant"], *summary["against"]]
    n = len(summary["tasks"])
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * n * len(mixers) / 2), 4.2))
    width = 0.8 / len(mixers)
    for i, m in enumerate(mixers):
        xs, rows = [], []
        for j, t in enumerate(summary["tasks"]):
            row = next((r for r in t["models"] if r["mixer"] == m), None)
            if row is not None:
                xs.append(j + (i - (len(mixers) - 1) / 2) * width)
                rows.append(row)
        label = m if len(m) < 40 else "…" + m[-38:]
        ax.bar(xs, [100 * r["acc"] for r in rows], width, yerr=yerr(rows), capsize=3, label=label)
        for x, r in zip(xs, rows):
            ax.scatter(
                [x] * len(r["seed_accs"]),
                [100 * a for a in r["seed_accs"]],
                s=10,
                color="black",
                zorder=3,
                label="one seed" if i == 0 and x == xs[0] else None,
            )
    ax.set_xticks(
        range(n),
        [t["task"] if len(t["task"]) < 40 else t["task"][:38] + "…" for t in summary["tasks"]],
        fontsize=7,
        rotation=10,
    )
    ax.set(ylabel="test accuracy % (mean, 95% CI)", ylim=(0, 102), title=f"{summary['variant']} vs baselines")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_compare(records: list[RunRecord], variant: str, against: list[str], out_dir: Path) -> tuple[dict, dict]:
    """Write compare.md, compare.json, compare.png (and the full leaderboard) into out_dir."""
    from slabench.runners.leaderboard import aggregate
    from slabench.runners.leaderboard_files import json_safe, write_leaderboard

    out_dir.mkdir(parents=True, exist_ok=True)
    board = aggregate(records)
    summary = summarise(board, variant, against)
    plot = plot_compare(summary, out_dir / "compare.png")
    paths = {"md": out_dir / "compare.md", "json": out_dir / "compare.json"}
    paths["md"].write_text(to_markdown(summary, plot))
    paths["json"].write_text(json.dumps(json_safe(summary), indent=1, default=str, allow_nan=False) + "\n")
    if plot is not None:
        paths["png"] = plot
    write_leaderboard(board, out_dir, "leaderboard")
    return summary, paths
