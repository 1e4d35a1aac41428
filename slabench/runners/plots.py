"""PNG plots for a leaderboard: accuracy vs each task parameter that varies (seq_len, pairs,
noise, ...), vs state size, and vs d_model when a grid sweeps it."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _errorbar(ax: Any, xs: list, rows: list[dict[str, Any]], label: str) -> None:
    ys = [100 * r["acc"] for r in rows]
    err = [0 if math.isnan(r["acc_ci"]) else 100 * r["acc_ci"] for r in rows]
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)


def make_plots(board: dict[str, Any], out_dir: Path, name: str) -> list[Path]:
    rows = [r for task_rows in board["tasks"].values() for r in task_rows]
    paths: list[Path] = []

    # Accuracy vs a task parameter: for each task family, each parameter that takes several
    # values while the others stay fixed within a line.
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
                lines[(r["model"], rest)].append(r)
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            rests = {rest for _, rest in lines}
            for (model, rest), lrows in sorted(lines.items()):
                lrows.sort(key=lambda r: r["task_params"][param])
                label = model if len(rests) == 1 else f"{model} [{', '.join(f'{k}={v}' for k, v in rest)}]"
                _errorbar(ax, [r["task_params"][param] for r in lrows], lrows, label)
            ax.set(xlabel=param, ylabel="test accuracy %", title=f"{family}: accuracy vs {param}", ylim=(-2, 102))
            if param == "seq_len":
                ax.set_xscale("log", base=2)
            ax.legend(fontsize=7)
            paths.append(_save(fig, out_dir / f"{name}-{family}-acc-vs-{param}.png"))

    # Accuracy vs recurrent state size (one point per task x model cell).
    sized = [r for r in rows if r["state_size"]]
    if sized:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        by_mixer = defaultdict(list)
        for r in sized:
            by_mixer[r["mixer"]].append(r)
        for mixer, mrows in sorted(by_mixer.items()):
            ax.scatter([r["state_size"] for r in mrows], [100 * r["acc"] for r in mrows], label=mixer)
        ax.set(xscale="log", xlabel="state size (elements per sequence)", ylabel="test accuracy %",
               title="accuracy vs state size", ylim=(-2, 102))
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / f"{name}-acc-vs-state.png"))

    # Accuracy vs d_model, when a grid sweeps it (mean over task cells).
    widths = {r["model_params"].get("d_model") for r in rows}
    if len(widths) > 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        series = defaultdict(lambda: defaultdict(list))
        for r in rows:
            rest = tuple(sorted((k, v) for k, v in r["model_params"].items() if k != "d_model"))
            series[(r["mixer"], rest)][r["model_params"].get("d_model", 64)].append(100 * r["acc"])
        for (mixer, rest), pts in sorted(series.items()):
            xs = sorted(pts)
            label = mixer + (f" [{', '.join(f'{k}={v}' for k, v in rest)}]" if rest else "")
            ax.plot(xs, [sum(pts[x]) / len(pts[x]) for x in xs], marker="o", label=label)
        ax.set(xscale="log", xlabel="d_model", ylabel="test accuracy % (mean over tasks)",
               title="accuracy vs d_model", ylim=(-2, 102))
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / f"{name}-acc-vs-d_model.png"))
    return paths
