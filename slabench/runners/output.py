"""What every written result shares: number formatting, Markdown tables, and figures.

Leaderboards, comparisons, the speed sweep and the SLA report all write through these, so a
number, an interval or a table looks the same in every file. Missing values (None or NaN) print
as '-'. Figures use matplotlib's Agg backend: files only, no display needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LEGEND_INSIDE = 8  # series a legend inside the axes holds without covering the data
LEGEND_ROWS = 24  # entries per column of a legend beside the axes


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def interval(x: float | None, lo: float | None = None, hi: float | None = None, fmt: str = ".3f") -> str:
    """'0.412' or, with both bounds, '0.412 [0.301, 0.550]' (fmt is the format spec of every number)."""
    if _missing(x):
        return "-"
    return f"{x:{fmt}}" + ("" if _missing(lo) or _missing(hi) else f" [{lo:{fmt}}, {hi:{fmt}}]")


def pct(x: float | None, lo: float | None = None, hi: float | None = None) -> str:
    """A fraction in percent with one decimal: '87.5' or, with an interval, '87.5 [61.2, 99.0]'."""

    def scaled(v: float | None) -> float | None:
        return None if v is None else 100 * v

    return interval(scaled(x), scaled(lo), scaled(hi), fmt=".1f")


def num(x: float | None) -> str:
    """A count or size, short: '1.2M', '45.0k', '512', '0.25'."""
    if _missing(x):
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}" if isinstance(x, int) or float(x).is_integer() else f"{x:.3g}"


def rate(k: int, n: int, lo: float, hi: float) -> str:
    """'3/5 [23, 88]': k of n, and the interval of the rate in whole percent."""
    return f"{k}/{n} [{100 * lo:.0f}, {100 * hi:.0f}]"


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A Markdown table; a '|' inside a cell is escaped so it cannot split the cell. `align`: one
    rule per column ('---', '---:' right, ':---:' centred), for tables of numbers."""
    rule = "|" + "---|" * len(header) if align is None else "| " + " | ".join(align) + " |"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def yerr(rows: list[dict[str, Any]]) -> list[list[float]]:
    """Asymmetric error bars (percent) from each row's acc, acc_lo and acc_hi; none where undefined."""

    def gap(r: dict[str, Any], bound: str) -> float:
        return 0.0 if _missing(r[bound]) else 100 * abs(r["acc"] - r[bound])

    return [[gap(r, "acc_lo") for r in rows], [gap(r, "acc_hi") for r in rows]]


def legend(ax: Any, n: int, beside: bool = False) -> bool:
    """Inside the axes for a few series; for many (or `beside`: axes too short to hold one), beside
    them in columns of at most LEGEND_ROWS (a legend of dozens of entries drawn over the data hides
    it). Returns whether it lies outside the figure, which `save_figure(..., crop=True)` then
    takes in."""
    if n <= LEGEND_INSIDE and not beside:
        ax.legend(fontsize=7)
        return False
    cols = math.ceil(n / LEGEND_ROWS)
    box = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, ncols=cols)
    box.set_in_layout(False)  # the axes keep their size; the PNG grows to hold the legend
    return True


def save_figure(fig: Any, path: Path, dpi: int = 110, crop: bool = False) -> Path:
    """Lay out, write and close `fig` (closing keeps a long run's memory flat); returns path.
    crop: size the PNG to what is drawn, for a figure with a legend beside its axes."""
    fig.tight_layout()
    if crop:  # a legend kept out of the layout is taken in by naming it
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        fig.savefig(path, dpi=dpi, bbox_inches="tight", bbox_extra_artists=legends)
    else:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
