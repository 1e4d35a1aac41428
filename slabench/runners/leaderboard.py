"""Leaderboards rebuilt from run records: per-seed outcomes, solve rates, tests, ranks (the files:
`leaderboard_files`).

A cell is one (task, model, train settings other than lr); its learning rate is the one with
the best mean *validation* accuracy among those with no failed run (the full sweep stays in the
JSON's `fixed_lr` view). A cell
keeps every seed's test accuracy and reports (statistics in `slabench.runners.stats`):

- solved: seeds whose test accuracy reaches `solve_at`; solve rate k/n with a Wilson interval;
- acc: mean test accuracy (micro, over scored positions) with a bootstrap interval, and median;
- time to solve: Kaplan-Meier median over seeds of the first evaluated step whose validation
  accuracy reaches `solve_at` (runs that never do are censored at their last step).

Rows are sorted by solve rate, then mean accuracy. Cells with fewer than `min_seeds` seeds are
printed but unranked. Going down the ranked rows, a row shares the rank of the group above while
an exact test (paired by seed when the two cells ran the same seeds) cannot separate it from the
group's top row at 5%; otherwise its rank is its position. So a rank never beats a row above it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from slabench.config import LEADERBOARD_SETTINGS, RunSpec, TrainSpec
from slabench.errors import SlabenchError
from slabench.record import RunRecord
from slabench.runners import stats

RANKED_BY = (
    "solve rate (seeds whose test accuracy reaches solve_at), then mean test accuracy (micro, over "
    "scored positions), at the lr with the best mean validation accuracy"
)
TEST = (
    "exact permutation test, two-sided: sign flips of the per-seed differences when both cells ran the same "
    "seeds (same data streams), else a permutation of the pooled seeds between the cells"
)


def score(record: RunRecord, metric: str = "test_acc") -> float | None:
    """A run's score: diverged runs score 0 (the setting failed to train); failed runs are
    excluded (they say nothing about the model) and listed separately."""
    if record["status"] == "diverged":
        return 0.0
    if record["status"] != "ok":
        return None
    return record["metrics"][metric]


def record_machines(records: list[RunRecord]) -> list[str]:
    """The devices the records ran on (their environment's device name), sorted."""
    return sorted({r["environment"]["device"] for r in records if r.get("environment")})


# Runs more than a minute apart ran in different sittings (machines, calls). In the SLA report's
# H200 records the gaps with no run in flight fall in two groups: at most 44 s (a new `slabench`
# process between two steps, or the next call on a machine still held) and at least 119 s (the
# next call on a fresh machine, not held in between, so merging them would count the gap).
SITTING_GAP_S = 60


def device_time(records: list[RunRecord]) -> tuple[float, int]:
    """(seconds, sittings): the device time the records took. A run occupies the device from its
    start (its record's timestamp less its training time, evaluations included) to its record; runs packed
    several at a time overlap, and a sitting runs from its first run's start to its last record,
    gaps under SITTING_GAP_S included (the device was held). A worker's process start and imports
    before its first run are not in it; timestamps are whole seconds."""
    spans = sorted(
        (end - r["timings"]["train_seconds"], end)
        for r in records
        if r.get("timestamp") and (r.get("timings") or {}).get("train_seconds") is not None
        for end in [datetime.fromisoformat(r["timestamp"]).timestamp()]
    )
    sittings: list[list[float]] = []
    for start, end in spans:
        if sittings and start <= sittings[-1][1] + SITTING_GAP_S:
            sittings[-1][1] = max(sittings[-1][1], end)
        else:
            sittings.append([start, end])
    return sum(end - start for start, end in sittings), len(sittings)


def device_time_line(records: list[RunRecord]) -> str:
    """One sentence: the records' device time, machines and sittings (`device_time`); records
    from several machines get each machine's share too, since a second on one is not a second
    on another."""
    seconds, sittings = device_time(records)
    if not sittings:
        return ""
    machines = record_machines(records)
    where = f"of {machines[0] if machines else '-'} in {_sittings(sittings)}"
    if len(machines) > 1:
        shares = (
            (m, *device_time([r for r in records if (r.get("environment") or {}).get("device") == m])) for m in machines
        )
        where = f"in {_sittings(sittings)} ({'; '.join(f'{s:,.0f} s of {m} in {n}' for m, s, n in shares)})"
    return (
        f"Device time: {seconds:,.0f} s ({seconds / 60:.0f} min) {where}, from the records (each sitting from its "
        "first run's start to its last record; runs packed several at a time overlap)."
    )


def _sittings(n: int) -> str:
    return f"{n} sitting{'s' if n > 1 else ''}"


def time_to_solve(record: RunRecord, solve_at: float) -> tuple[int, bool]:
    """(first evaluated step with validation accuracy >= solve_at, True), or (last step, False)."""
    curve = record["metrics"].get("curve") or []
    for point in curve:
        if point.get("val_acc") is not None and point["val_acc"] >= solve_at:
            return point["step"], True
    last = curve[-1]["step"] if curve else record["metrics"].get("steps", 0)
    return last, False


def learning_curve(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Median and range over seeds of validation accuracy per evaluated step; a run that
    stopped early keeps its last value to the end of the cell's longest run."""
    curves = [
        {p["step"]: p["val_acc"] for p in r["metrics"].get("curve") or [] if p.get("val_acc") is not None}
        for r in runs
        if r["status"] == "ok"
    ]
    curves = [c for c in curves if c]
    steps = sorted({s for c in curves for s in c})
    out: dict[str, list[float]] = {"step": steps, "median": [], "lo": [], "hi": []}
    for s in steps:
        vals = [c[max(t for t in c if t <= s)] if any(t <= s for t in c) else None for c in curves]
        vals = [v for v in vals if v is not None]
        out["median"].append(stats.median(vals))
        out["lo"].append(min(vals))
        out["hi"].append(max(vals))
    return out


def cell_stats(runs: list[dict[str, Any]], solve_at: float) -> dict[str, Any]:
    """The outcome statistics of one cell's runs (one lr): per-seed values and summaries."""
    ok = sorted((r for r in runs if score(r, "test_acc") is not None), key=lambda r: r["seed"])
    accs = [score(r, "test_acc") for r in ok]
    solved = sum(a >= solve_at for a in accs)
    acc_lo, acc_hi = stats.bootstrap_mean(accs)
    solve_lo, solve_hi = stats.wilson(solved, len(accs))
    times = [time_to_solve(r, solve_at) if r["status"] == "ok" else (r["metrics"].get("steps", 0), False) for r in ok]
    good = [r for r in ok if r["status"] == "ok"]
    return {
        "seeds": len(ok),
        "seed_ids": [r["seed"] for r in ok],
        "seed_accs": accs,
        "acc": stats.mean(accs),
        "acc_lo": acc_lo,
        "acc_hi": acc_hi,
        "acc_median": stats.median(accs),
        "solved": solved,
        "solve_rate": solved / len(accs) if accs else math.nan,
        "solve_lo": solve_lo,
        "solve_hi": solve_hi,
        "solve_step": stats.km_median([t for t, _ in times], [s for _, s in times]),
        "val_acc": stats.mean([score(r, "val_acc") for r in ok]),
        "exact": stats.mean([score(r, "test_exact") for r in ok]),
        "diverged": sum(r["status"] == "diverged" for r in runs),
        "failed": len(runs) - len(ok),
        "params": good[0]["model"]["params"] if good else None,
        "state_size": good[0]["model"]["state_size"] if good else None,
        "steps": stats.mean([r["metrics"]["steps"] for r in good]),
        "train_seconds": stats.mean([r["timings"]["train_seconds"] for r in good]),
        "tokens_per_s": stats.mean([r["timings"]["tokens_per_s"] for r in good]),
        "overlap": max((r["metrics"].get("train_test_overlap") or 0.0 for r in good), default=None),
        "kernel_paths": sorted({f"{k}:{v}" for r in good for k, v in (r.get("kernel_paths") or {}).items()}),
        "curve": learning_curve(ok),
    }


def sort_key(row: dict[str, Any]) -> tuple[float, float]:
    """The point estimate rows are ordered by, best first: solve rate, then mean accuracy."""
    return -row["solve_rate"], -row["acc"]


def rank_rows(rows: list[dict[str, Any]], min_seeds: int) -> list[dict[str, Any]]:
    """Rows sorted by `sort_key`, ranked ones (>= min_seeds seeds) first; sets `rank` (None
    when unranked), `rank_p` (the test's p against its group's top row) and `rank_test`."""
    ranked = sorted((r for r in rows if r["seeds"] >= min_seeds), key=sort_key)
    unranked = sorted((r for r in rows if r["seeds"] < min_seeds), key=sort_key)
    leader, rank = None, 0
    for i, r in enumerate(ranked):
        test = stats.compare(stats.seed_scores(r), stats.seed_scores(leader)) if leader else None
        if test is None or test["p"] < stats.ALPHA:  # separable from the group's top: a new group
            leader, rank = r, i + 1
        r.update(rank=rank, rank_p=test["p"] if test else None, rank_test=test["test"] if test else None)
    for r in unranked:
        r.update(rank=None, rank_p=None, rank_test=None)
    return ranked + unranked


def _settings(records: list[RunRecord], overrides: dict[str, Any]) -> dict[str, Any]:
    """solve_at and min_seeds: the records' own (they must agree), unless overridden."""
    out = {}
    for name in LEADERBOARD_SETTINGS:
        if overrides.get(name) is not None:
            out[name] = overrides[name]
            continue
        values = {RunSpec.from_dict(r["spec"]).train.__dict__[name] for r in records} or {
            TrainSpec.__dataclass_fields__[name].default
        }
        if len(values) > 1:
            raise SlabenchError(
                f"[train] {name}: the records disagree ({', '.join(map(str, sorted(values)))}); "
                f"pass --{name.replace('_', '-')} or rebuild them apart"
            )
        out[name] = values.pop()
    TrainSpec(**out)  # the same range checks as a grid's
    return out


def _varying_train(specs: list[RunSpec]) -> list[str]:
    """Train fields (besides lr and the leaderboard settings) that differ between records of the
    same task and model: such records are different cells, never pooled."""
    by_cell: dict[tuple[str, str], set] = defaultdict(set)
    for s in specs:
        by_cell[(s.task.label(), s.model.label())].add(s.train)
    fields = [f for f in TrainSpec.__dataclass_fields__ if f not in ("lr", *LEADERBOARD_SETTINGS)]
    return [f for f in fields if any(len({getattr(t, f) for t in ts}) > 1 for ts in by_cell.values())]


def choose_lr(val_acc: dict[float, float], failed: set[float]) -> tuple[float, bool]:
    """The lr with the best mean validation accuracy (ties: the smaller lr) among the lrs in
    `val_acc` with no failed run, and whether it is at the edge of the sweep. Failed runs say
    nothing about the model, so an lr with some is measured on fewer seeds: choose among the lrs
    with none, lest one surviving seed win (any lr when every one has some)."""
    complete = [lr for lr in val_acc if lr not in failed] or list(val_acc)
    lr = max(complete, key=lambda x: (val_acc[x], -x))
    return lr, len(val_acc) > 1 and lr in (min(val_acc), max(val_acc))


def aggregate(records: list[RunRecord], solve_at: float | None = None, min_seeds: int | None = None) -> dict[str, Any]:
    """Per-task ranked rows, the overall table, the per-lr view, the failures and the warnings."""
    settings = _settings(records, {"solve_at": solve_at, "min_seeds": min_seeds})
    specs = [RunSpec.from_dict(r["spec"]) for r in records]
    varying = _varying_train(specs)
    cells: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r, spec in zip(records, specs):
        train = ", ".join(f"{f}={getattr(spec.train, f)}" for f in varying)
        model = spec.model.label() + (f" [{train}]" if train else "")
        cells[(spec.task.label(), model)][spec.train.lr].append(r)

    fixed_lr, by_task, warnings = [], defaultdict(list), []
    for (task, model), by_lr in sorted(cells.items()):
        options = []
        for lr, runs in sorted(by_lr.items()):
            spec = RunSpec.from_dict(runs[0]["spec"])
            row = {
                "task": task,
                "task_name": spec.task.name,
                "task_params": dict(spec.task.params),
                "model": model,
                "mixer": spec.model.name,
                "model_params": dict(spec.model.params),
                "lr": lr,
                **cell_stats(runs, settings["solve_at"]),
            }
            fixed_lr.append({k: v for k, v in row.items() if k != "curve"})
            if row["seeds"]:
                options.append(row)
        if not options:  # every run failed: no row, so say it where the rows are read
            n = sum(len(runs) for runs in by_lr.values())
            warnings.append(f"{model} on {task}: all {n} runs failed, so it has no row (see the failures)")
            continue
        lr, edge = choose_lr({o["lr"]: o["val_acc"] for o in options}, {o["lr"] for o in options if o["failed"]})
        best = next(o for o in options if o["lr"] == lr)
        lrs = [o["lr"] for o in options]
        by_task[task].append({**best, "best_lr": best["lr"], "lrs": lrs, "lr_edge": edge})
        if edge:
            warnings.append(
                f"{model} on {task}: the chosen lr {best['lr']:g} is at the edge of the sweep "
                f"({', '.join(f'{x:g}' for x in lrs)}); a wider sweep may do better"
            )
    one_lr = sorted({r["model"] for rows in by_task.values() for r in rows if len(r["lrs"]) == 1})
    if one_lr:
        warnings.append(
            f"one learning rate only (not chosen on validation) for {len(one_lr)} of "
            f"{len({r['model'] for rows in by_task.values() for r in rows})} models"
        )

    for task in by_task:
        by_task[task] = rank_rows(by_task[task], settings["min_seeds"])
    unranked = sum(r["rank"] is None for rows in by_task.values() for r in rows)
    if unranked:
        warnings.append(
            f"{unranked} cells have fewer than min_seeds = {settings['min_seeds']} seeds: printed, not ranked"
        )
    paired_n = [r["seeds"] for rows in by_task.values() for r in rows if r["rank"] is not None]
    if paired_n and stats.min_paired_p(min(paired_n)) >= stats.ALPHA:
        warnings.append(
            f"with {min(paired_n)} paired seeds the smallest two-sided p is "
            f"{stats.min_paired_p(min(paired_n)):.4g}: no two rows can be separated at 5% "
            "(6 seeds are the fewest that can)"
        )

    failures = [
        {
            "key": r["key"],
            "model": s.model.label(),
            "task": s.task.label(),
            "seed": r["seed"],
            "lr": s.train.lr,
            "status": r["status"],
            "error": r.get("error"),
        }
        for r, s in zip(records, specs)
        if r["status"] != "ok"
    ]
    return {
        "ranked_by": RANKED_BY,
        "test": TEST,
        **settings,
        "tasks": dict(by_task),
        "overall": overall(by_task),
        "fixed_lr": fixed_lr,
        "warnings": warnings,
        "failures": failures,
        "machines": record_machines(records),
        "runs": len(records),
    }


def overall(by_task: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per model across tasks: the pooled solve rate (Wilson interval) and the mean of its
    cells' mean accuracies (bootstrap over seeds within each task), sorted like task rows."""
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rows in by_task.values():
        for row in rows:
            rows_of[row["model"]].append(row)
    out = []
    for model, rows in rows_of.items():
        n, k = sum(r["seeds"] for r in rows), sum(r["solved"] for r in rows)
        lo, hi = stats.wilson(k, n)
        acc_lo, acc_hi = stats.bootstrap_mean_of_means([r["seed_accs"] for r in rows])
        out.append(
            {
                "model": model,
                "mixer": rows[0]["mixer"],
                "tasks": len(rows),
                "runs": n,
                "solved": k,
                "solve_rate": k / n if n else math.nan,
                "solve_lo": lo,
                "solve_hi": hi,
                "acc": stats.mean([r["acc"] for r in rows]),
                "acc_lo": acc_lo,
                "acc_hi": acc_hi,
                "params": rows[0]["params"],
            }
        )
    return sorted(out, key=lambda o: (-o["tasks"], *sort_key(o)))
