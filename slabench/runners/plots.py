"""PNG plots for a leaderboard.

Per task: test accuracy per model (mean with its 95% bootstrap interval, every seed as a dot)
beside steps to solve, and validation-accuracy learning curves (median and range over seeds).
Across tasks: accuracy vs each task parameter that varies (seq_len, pairs, noise, ...), vs state
size, and vs d_model when a grid sweeps it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from slabench.runners.output import LEGEND_INSIDE, LEGEND_ROWS, legend, plt, save_figure, yerr


def _short(model: str, rows: list[dict[str, Any]], named: bool = True) -> str:
    """A model's label without the parameters every row of `rows` shares; named=False leaves out
    the mixer (a panel's title names it)."""
    shared = set.intersection(*(set(r["model_params"].items()) for r in rows))
    own = ", ".join(
        f"{k}={v}"
        for k, v in sorted(set(next(r for r in rows if r["model"] == model)["model_params"].items()) - shared)
    )
    mixer = next(r for r in rows if r["model"] == model)["mixer"]
    extra = model.split(" [", 1)[1].rstrip("]") if " [" in model else ""
    own = f"({own})" if own and named else own
    return (mixer if named else "") + own + (f" [{extra}]" if extra else "")


def _own(rest: tuple, common: set) -> str:
    """' [k=v, ...]' for a series' parameters (`rest`, sorted (k, v) pairs) that not every series
    shares (`common`); '' when it has none of its own."""
    own = [f"{k}={v}" for k, v in rest if (k, v) not in common]
    return f" [{', '.join(own)}]" if own else ""


def _panels(mixers: list[str], title: str) -> tuple[Any, dict[str, Any]]:
    """A figure and each mixer's axes, given each series' mixer: one axes for all when a legend
    inside it holds the series; otherwise one per mixer, stacked on shared axes, each as tall as
    its legend (a hundred lines in one axes hide each other, and matplotlib's colours repeat
    every ten)."""
    counts = Counter(mixers)
    if len(mixers) <= LEGEND_INSIDE or len(counts) == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.set_title(title)
        return fig, dict.fromkeys(counts, ax)
    names = sorted(counts)
    heights = [max(2.2, 0.3 + 0.16 * min(counts[m], LEGEND_ROWS)) for m in names]  # inches; a legend row ~0.16
    fig, axes = plt.subplots(
        len(names), 1, figsize=(6.4, sum(heights)), sharex=True, sharey=True, squeeze=False, height_ratios=heights
    )
    axes[0, 0].set_title(title)
    for ax, mixer in zip(axes[:, 0], names):
        ax.set_title(mixer, fontsize=9, loc="left")
    return fig, dict(zip(names, axes[:, 0]))


def _by_panel(series: dict[tuple, Any], panels: dict[str, Any]) -> list[list[tuple]]:
    """Series keys (each starting with its mixer), sorted, grouped by the axes they are drawn on."""
    keys = sorted(series)
    if len(set(panels.values())) == 1:
        return [keys]
    return [[k for k in keys if k[0] == mixer] for mixer in panels]


def _style(i: int) -> str:
    """Line style of the i-th series on an axes: solid for the first ten colours, then dashed,
    dotted, dash-dotted, so series that share a colour still differ."""
    return ("-", "--", ":", "-.")[i // 10 % 4]


def _marker(i: int) -> str:
    """Marker of the i-th series of points without lines: circles for the first ten colours, then
    squares, triangles, diamonds (as `_style` for lines)."""
    return ("o", "s", "^", "D")[i // 10 % 4]


def _save(fig: Any, panels: dict[str, Any], xlabel: str, ylabel: str, path: Path, log: int | None) -> Path:
    """Axis labels, legends and (log: its base) a log x axis on every axes of a figure from
    `_panels`, then write it."""
    axes = list(dict.fromkeys(panels.values()))  # each axes once, top to bottom
    crop = False
    for ax in axes:
        ax.set(ylabel=ylabel if len(axes) == 1 else None, ylim=(-2, 102))
        if log:
            ax.set_xscale("log", base=log)
        crop |= legend(ax, len(ax.get_legend_handles_labels()[1]), beside=len(axes) > 1)  # panels are short
    axes[-1].set_xlabel(xlabel)
    if len(axes) > 1:
        fig.supylabel(ylabel, fontsize=10)
    return save_figure(fig, path, crop=crop)


def task_plots(task: str, rows: list[dict[str, Any]], out_dir: Path, stem: str) -> list[Path]:
    """Accuracy per model with seeds as dots, steps to solve, and learning curves for one task."""
    labels = [_short(r["model"], rows) for r in rows]
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(11, 0.9 + 0.45 * max(4, len(rows))), gridspec_kw={"width_ratios": [3, 2]}, sharey=True
    )
    ys = list(range(len(rows)))[::-1]  # best row on top
    ax.errorbar(
        [100 * r["acc"] for r in rows],
        ys,
        xerr=yerr(rows),
        fmt="D",
        color="black",
        capsize=4,
        label="mean, 95% bootstrap CI",
    )
    for y, r in zip(ys, rows):
        ax.scatter(
            [100 * a for a in r["seed_accs"]],
            [y + 0.18] * len(r["seed_accs"]),
            s=14,
            alpha=0.6,
            color="tab:blue",
            label="one seed" if y == ys[0] else None,
        )
    solve_at = rows[0].get("solve_at")
    if solve_at is not None:
        ax.axvline(100 * solve_at, color="grey", linestyle=":", label=f"solve_at {100 * solve_at:g}%")
    ax.set(xlabel="test accuracy %", xlim=(-2, 102), title=task if len(task) < 70 else task[:68] + "…")
    ax.set_yticks(
        ys, [f"{lab} ({'-' if r['rank'] is None else r['rank']})" for lab, r in zip(labels, rows)], fontsize=8
    )
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3, axis="x")
    solved = [(y, r) for y, r in zip(ys, rows) if r["solve_step"] is not None]
    bx.barh([y for y, _ in solved], [r["solve_step"] for _, r in solved], color="tab:green", alpha=0.7)
    for y, r in zip(ys, rows):
        bx.text(
            0,
            y,
            f" {r['solved']}/{r['seeds']} solved" + ("" if r["solve_step"] is not None else ", median not reached"),
            va="center",
            fontsize=7,
        )
    bx.set(xlabel="steps to solve (Kaplan-Meier median over seeds)", title="time to solve")
    bx.grid(alpha=0.3, axis="x")
    paths = [save_figure(fig, out_dir / f"{stem}.png")]

    # One small panel per model (overlaid bands of nine models are unreadable).
    cols = min(3, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(3.6 * cols, 2.4 * nrows + 0.5), sharex=True, sharey=True, squeeze=False
    )
    for ax, lab, r in zip(axes.flat, labels, rows):
        c = r["curve"]
        ax.plot(c["step"], [100 * v for v in c["median"]], color="tab:blue", label="median")
        ax.fill_between(
            c["step"],
            [100 * v for v in c["lo"]],
            [100 * v for v in c["hi"]],
            color="tab:blue",
            alpha=0.2,
            label="range over seeds",
        )
        if solve_at is not None:
            ax.axhline(100 * solve_at, color="grey", linestyle=":")
        ax.set_title(f"{lab}: {r['solved']}/{r['seeds']} solved", fontsize=8)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("val. acc %")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"validation accuracy over training: {task if len(task) < 70 else task[:68] + '…'}", fontsize=9)
    paths.append(save_figure(fig, out_dir / f"{stem}-curves.png"))
    return paths


def param_plots(rows: list[dict[str, Any]], out_dir: Path, name: str) -> list[Path]:
    """Accuracy vs a task parameter: for each task family, each parameter that takes several
    values, one line per model and setting of the other parameters."""
    paths = []
    by_family = defaultdict(list)
    for r in rows:
        by_family[r["task_name"]].append(r)
    for family, frows in sorted(by_family.items()):
        keys = sorted({k for r in frows for k in r["task_params"]})
        for param in keys:
            values = {r["task_params"].get(param) for r in frows}
            if len(values) < 2 or not all(isinstance(v, (int, float)) for v in values):
                continue
            lines = defaultdict(list)
            for r in frows:
                rest = tuple(sorted((k, v) for k, v in r["task_params"].items() if k != param))
                lines[(r["mixer"], r["model"], rest)].append(r)
            fig, panels = _panels([mixer for mixer, _, _ in lines], f"{family}: accuracy vs {param}")
            groups = _by_panel(lines, panels)
            named = len(groups) == 1  # else each panel's title names its mixer
            for group in groups:
                prows = frows if named else [r for r in frows if r["mixer"] == group[0][0]]
                common = set.intersection(*(set(rest) for _, _, rest in group))
                for i, (mixer, model, rest) in enumerate(group):
                    lrows = sorted(lines[(mixer, model, rest)], key=lambda r: r["task_params"][param])
                    label = _short(model, prows, named) + _own(rest, common)
                    panels[mixer].errorbar(
                        [r["task_params"][param] for r in lrows],
                        [100 * r["acc"] for r in lrows],
                        yerr=yerr(lrows),
                        marker="o",
                        capsize=3,
                        linestyle=_style(i),
                        label=label.strip() or mixer,
                    )
            path = out_dir / f"{name}-{family}-acc-vs-{param}.png"
            log = 2 if param == "seq_len" else None
            paths.append(_save(fig, panels, param, "test accuracy % (mean, 95% CI)", path, log))
    return paths


def state_plot(rows: list[dict[str, Any]], out_dir: Path, name: str) -> list[Path]:
    """Accuracy vs recurrent state size, one point per task x model cell (none without sizes)."""
    sized = [r for r in rows if r["state_size"]]
    if not sized:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    by_mixer = defaultdict(list)
    for r in sized:
        by_mixer[r["mixer"]].append(r)
    for i, (mixer, mrows) in enumerate(sorted(by_mixer.items())):
        ax.errorbar(
            [r["state_size"] for r in mrows],
            [100 * r["acc"] for r in mrows],
            yerr=yerr(mrows),
            fmt=_marker(i),
            capsize=3,
            label=mixer,
        )
    ax.set(
        xscale="log",
        xlabel="state size (elements per sequence)",
        ylabel="test accuracy % (mean, 95% CI)",
        title="accuracy vs state size",
        ylim=(-2, 102),
    )
    crop = legend(ax, len(by_mixer))
    return [save_figure(fig, out_dir / f"{name}-acc-vs-state.png", crop=crop)]


def make_plots(board: dict[str, Any], out_dir: Path, name: str) -> dict[str, list[Path]]:
    """task -> its plots, and '' -> the plots across tasks."""
    out: dict[str, list[Path]] = {}
    for i, (task, rows) in enumerate(board["tasks"].items()):
        rows = [{**r, "solve_at": board["solve_at"]} for r in rows]
        out[task] = task_plots(task, rows, out_dir, f"{name}-task{i + 1}-{rows[0]['task_name']}")
    rows = [r for task_rows in board["tasks"].values() for r in task_rows]
    paths = param_plots(rows, out_dir, name) + state_plot(rows, out_dir, name)

    # Accuracy vs d_model, when a grid sweeps it (mean over task cells).
    widths = {r["model_params"].get("d_model") for r in rows}
    if len(widths) > 1:
        series = defaultdict(lambda: defaultdict(list))
        for r in rows:
            rest = tuple(sorted((k, v) for k, v in r["model_params"].items() if k != "d_model"))
            series[(r["mixer"], rest)][r["model_params"].get("d_model", 64)].append(100 * r["acc"])
        fig, panels = _panels([mixer for mixer, _ in series], "accuracy vs d_model")
        groups = _by_panel(series, panels)
        named = len(groups) == 1  # else each panel's title names its mixer
        for group in groups:
            common = set.intersection(*(set(rest) for _, rest in group))
            for i, (mixer, rest) in enumerate(group):
                pts = series[(mixer, rest)]
                xs = sorted(pts)
                label = (mixer if named else "") + _own(rest, common)
                ys = [sum(pts[x]) / len(pts[x]) for x in xs]
                panels[mixer].plot(xs, ys, marker="o", linestyle=_style(i), label=label.strip() or mixer)
        path = out_dir / f"{name}-acc-vs-d_model.png"
        ylabel = "test accuracy % (mean over tasks)"
        paths.append(_save(fig, panels, "d_model", ylabel, path, 10))
    out[""] = paths
    return out
