"""Leaderboards rebuilt from run records: aggregate seeds, pick the lr, rank, write files.

Accuracy is micro accuracy over scored test positions (exact match reported beside it). For
every (task, model) cell the learning rate is the one with the best mean *validation* accuracy
(the full sweep stays in the JSON's `fixed_lr` view), seeds are aggregated as mean +- 95%
Student-t interval, and models are ranked per task by mean test accuracy with ties where
intervals overlap: going down the table, a model shares the rank of the group above it while
its interval overlaps that group's best model's, else its rank is its position. The overall
table ranks by mean rank across tasks.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from slabench.config import RunSpec

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
RANKED_BY = "mean test accuracy (micro, over scored positions) at the lr with the best mean validation accuracy"


def mean_ci(xs: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t interval (nan half-width for a single value)."""
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    mean = sum(xs) / n
    if n == 1:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = T975[n - 2] if n - 1 <= len(T975) else 1.96
    return mean, t * sd / math.sqrt(n)


def tie_ranks(rows: list[dict[str, Any]], key: str = "acc", ci: str = "acc_ci") -> list[int]:
    """Competition ranks of `rows` (sorted by `key`, best first) with ties where intervals overlap.

    Walking down, a row ties with the group above it if its interval overlaps the interval of
    that group's first (best) row; otherwise it opens a group ranked by its position. So ranks
    never improve going down the table. (The earlier rule, 1 + the number of rows entirely
    above, gave a model with an interval as wide as [0, 100] rank 1 at the bottom of a table.)
    """
    def bounds(r: dict[str, Any]) -> tuple[float, float]:
        h = 0.0 if math.isnan(r[ci]) else r[ci]
        return r[key] - h, r[key] + h

    ranks: list[int] = []
    leader, rank = None, 0
    for i, r in enumerate(rows):
        if leader is None or bounds(r)[1] < bounds(leader)[0]:  # below the group's best: a new group
            leader, rank = r, i + 1
        ranks.append(rank)
    return ranks


def _acc(record: dict[str, Any], metric: str) -> float | None:
    """A run's score: diverged runs score 0 (the setting failed to train); failed runs are
    excluded (they say nothing about the model) and listed separately."""
    if record["status"] == "diverged":
        return 0.0
    if record["status"] != "ok":
        return None
    return record["metrics"][metric]


def record_machines(records: list[dict[str, Any]]) -> list[str]:
    """The devices the records ran on (their environment's device name), sorted."""
    return sorted({r["environment"]["device"] for r in records if r.get("environment")})


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-task ranked rows, the overall ranking, the per-lr view and the failures."""
    cells: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        spec = RunSpec.from_dict(r["spec"])
        cells[(spec.task.label(), spec.model.label())][spec.train.lr].append(r)

    fixed_lr, by_task = [], defaultdict(list)
    for (task, model), by_lr in sorted(cells.items()):
        options = []
        for lr, runs in sorted(by_lr.items()):
            ok = [r for r in runs if _acc(r, "test_acc") is not None]
            val, _ = mean_ci([_acc(r, "val_acc") for r in ok])
            acc, acc_ci = mean_ci([_acc(r, "test_acc") for r in ok])
            exact, _ = mean_ci([0.0 if r["status"] == "diverged" else r["metrics"]["test_exact"] for r in ok])
            good = [r for r in ok if r["status"] == "ok"]
            spec = RunSpec.from_dict(runs[0]["spec"])
            row = {
                "task": task,
                "task_name": spec.task.name,
                "task_params": dict(spec.task.params),
                "model": model,
                "mixer": spec.model.name,
                "model_params": dict(spec.model.params),
                "lr": lr,
                "seeds": len(ok),
                "diverged": sum(r["status"] == "diverged" for r in runs),
                "failed": len(runs) - len(ok),
                "val_acc": val,
                "acc": acc,
                "acc_ci": acc_ci,
                "exact": exact,
                "params": good[0]["model"]["params"] if good else None,
                "state_size": good[0]["model"]["state_size"] if good else None,
                "steps": mean_ci([r["metrics"]["steps"] for r in good])[0],
                "train_seconds": mean_ci([r["timings"]["train_seconds"] for r in good])[0],
                "tokens_per_s": mean_ci([r["timings"]["tokens_per_s"] for r in good])[0],
                "overlap": max((r["metrics"].get("train_test_overlap") or 0.0 for r in good), default=None),
                "kernel_paths": sorted({f"{k}:{v}" for r in good for k, v in (r.get("kernel_paths") or {}).items()}),
            }
            fixed_lr.append(row)
            if ok:
                options.append(row)
        if options:
            best = max(options, key=lambda o: (o["val_acc"], -o["lr"]))
            by_task[task].append({**best, "best_lr": best["lr"], "lrs": [o["lr"] for o in options]})

    for rows in by_task.values():
        rows.sort(key=lambda r: -r["acc"])
        for row, rank in zip(rows, tie_ranks(rows)):
            row["rank"] = rank

    ranks = defaultdict(list)
    for rows in by_task.values():
        for row in rows:
            ranks[row["model"]].append(row)
    overall = []
    for model, rows in ranks.items():
        overall.append({
            "model": model,
            "mixer": rows[0]["mixer"],
            "mean_rank": sum(r["rank"] for r in rows) / len(rows),
            "mean_acc": sum(r["acc"] for r in rows) / len(rows),
            "tasks": len(rows),
            "params": rows[0]["params"],
        })
    overall.sort(key=lambda o: (o["mean_rank"], -o["mean_acc"]))

    failures = [
        {"key": r["key"], "model": RunSpec.from_dict(r["spec"]).model.label(), "task": RunSpec.from_dict(r["spec"]).task.label(),
         "seed": r["seed"], "status": r["status"], "error": r.get("error")}
        for r in records if r["status"] != "ok"
    ]
    machines = record_machines(records)
    return {"ranked_by": RANKED_BY, "tasks": dict(by_task), "overall": overall, "fixed_lr": fixed_lr,
            "failures": failures, "machines": machines, "runs": len(records)}


# ---- writing ----------------------------------------------------------------------------------


def _pct(x: float | None, ci: float | None = None) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{100 * x:.1f}" + ("" if ci is None or math.isnan(ci) else f" ± {100 * ci:.1f}")


def _num(x: float | int | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}" if isinstance(x, int) or float(x).is_integer() else f"{x:.3g}"


TASK_COLUMNS = ["rank", "model", "params", "state size", "acc % (95% CI)", "exact %", "best lr", "seeds",
                "steps", "wall s", "tokens/s"]


def task_row_cells(row: dict[str, Any]) -> list[str]:
    seeds = f"{row['seeds']}" + (f" ({row['diverged']} div.)" if row["diverged"] else "") + (
        f" ({row['failed']} failed)" if row["failed"] else "")
    return [str(row["rank"]), row["model"], _num(row["params"]), _num(row["state_size"]), _pct(row["acc"], row["acc_ci"]),
            _pct(row["exact"]), f"{row['best_lr']:g}", seeds, _num(row["steps"]), f"{row['train_seconds']:.1f}",
            _num(row["tokens_per_s"])]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(name: str, board: dict[str, Any], plots: list[Path]) -> str:
    out = [f"# Leaderboard: {name}", "",
           f"Generated by `slabench leaderboard` from {board['runs']} run records; do not edit by hand.",
           f"Ranked by {board['ranked_by']}; ± is the 95% t interval over seeds; equal ranks are ties "
           "(overlapping intervals).", f"Machines: {', '.join(board['machines']) or '-'}.", ""]
    out += ["## Overall (mean rank across tasks)", "",
            _md_table(["model", "mean rank", "mean acc %", "tasks", "params"],
                      [[o["model"], f"{o['mean_rank']:.2f}", _pct(o["mean_acc"]), str(o["tasks"]), _num(o["params"])]
                       for o in board["overall"]]), ""]
    for task, rows in board["tasks"].items():
        overlap = max((r["overlap"] or 0.0) for r in rows)
        out += [f"## {task}", "", _md_table(TASK_COLUMNS, [task_row_cells(r) for r in rows]), "",
                f"Train/test overlap (fraction of test examples also drawn in training, max over runs): {overlap:.4f}.", ""]
    if plots:
        out += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    if board["failures"]:
        out += ["## Runs that did not finish ok", "",
                _md_table(["model", "task", "seed", "status", "error"],
                          [[f["model"], f["task"], str(f["seed"]), f["status"], (f["error"] or "")[:200]] for f in board["failures"]]),
                ""]
    return "\n".join(out)


def write_leaderboard(board: dict[str, Any], out_dir: Path, name: str) -> dict[str, Path]:
    """Write `<name>.md`, `.csv`, `.json` and plots of `board` (from `aggregate`) into `out_dir`;
    return the paths."""
    from slabench.runners.plots import make_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(board, out_dir, name)
    paths = {"md": out_dir / f"{name}.md", "csv": out_dir / f"{name}.csv", "json": out_dir / f"{name}.json"}
    paths["md"].write_text(to_markdown(name, board, plots))
    paths["json"].write_text(json.dumps({"name": name, **board}, indent=1, default=str))
    with paths["csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "rank", "model", "mixer", "params", "state_size", "acc", "acc_ci95", "exact", "val_acc",
                    "best_lr", "seeds", "diverged", "failed", "steps", "train_seconds", "tokens_per_s"])
        for task, rows in board["tasks"].items():
            for r in rows:
                w.writerow([task, r["rank"], r["model"], r["mixer"], r["params"], r["state_size"], r["acc"], r["acc_ci"],
                            r["exact"], r["val_acc"], r["best_lr"], r["seeds"], r["diverged"], r["failed"], r["steps"],
                            r["train_seconds"], r["tokens_per_s"]])
    return paths
