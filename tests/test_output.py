"""The shared formatting of written results, against hand-written strings."""

import math

import matplotlib.pyplot as plt
import pytest

from slabench.runners import output


def test_numbers_percentages_and_intervals():
    assert output.pct(0.875) == "87.5" and output.pct(0.875, 0.612, 0.99) == "87.5 [61.2, 99.0]"
    assert output.pct(None) == "-" and output.pct(math.nan) == "-"
    assert output.pct(0.5, math.nan, math.nan) == "50.0" and output.pct(0.5, 0.4, None) == "50.0"
    assert output.interval(0.41234) == "0.412" and output.interval(1.5, 1.25, 1.75, fmt=".2f") == "1.50 [1.25, 1.75]"
    assert output.interval(math.nan) == "-" and output.interval(None, fmt=".2f") == "-"
    assert output.num(1_234_567) == "1.2M" and output.num(45_000) == "45.0k" and output.num(2.5e9) == "2.5G"
    assert output.num(512) == "512" and output.num(512.0) == "512" and output.num(0.25) == "0.25"
    assert output.num(None) == "-" and output.num(math.nan) == "-"
    assert output.rate(3, 5, 0.2307, 0.8824) == "3/5 [23, 88]"


def test_markdown_table_escapes_pipes():
    assert output.md_table(["a", "b"], [["1", "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"


def test_error_bars_and_figure_saving(tmp_path):
    rows = [{"acc": 0.5, "acc_lo": 0.4, "acc_hi": 0.75}, {"acc": 0.2, "acc_lo": math.nan, "acc_hi": None}]
    bars = output.yerr(rows)
    assert bars[0] == pytest.approx([10.0, 0.0]) and bars[1] == pytest.approx([25.0, 0.0])  # percent; 0 if undefined
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = output.save_figure(fig, tmp_path / "f.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not plt.get_fignums()  # written, and closed


@pytest.mark.parametrize("series", [3, 40])
def test_a_legend_of_many_series_goes_beside_the_axes_and_into_the_png(tmp_path, series):
    """A few series keep their legend inside the axes and the figure's size; dozens go beside the
    axes, outside the figure, and the PNG grows to hold every entry instead of cutting them off."""
    from matplotlib.image import imread

    from slabench.runners.output import LEGEND_INSIDE, legend

    fig, ax = plt.subplots(figsize=(4, 3))
    for i in range(series):
        ax.plot([0, 1], [i, i + 1], label=f"model number {i} [n_heads={i}]")
    crop = legend(ax, series)
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    assert crop == (box.x1 > fig.bbox.x1) == (series > LEGEND_INSIDE)
    span = (box.x1 - ax.bbox.x0) / fig.dpi * 50  # axes' left edge to legend's right edge, at 50 dpi
    height, width, _ = imread(output.save_figure(fig, tmp_path / "f.png", dpi=50, crop=crop)).shape
    assert width >= span if crop else (width, height) == (4 * 50, 3 * 50)
