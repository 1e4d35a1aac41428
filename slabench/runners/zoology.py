"""Zoology's Figure 2 from run records (`slabench report zoology`): MQAR accuracy vs d_model,
one panel per seq_len, one line per mixer at its best learning rate per point.

Zoology (Arora, Eyuboglu et al., ICLR 2024) shows softmax attention solving MQAR at every width
while fixed-state mixers fall as seq_len (and the number of key-value pairs with it) grows and
recover as d_model grows. The grids are the presets zoology-mqar-<seq_len> (the linear mixers)
and zoology-mqar-<seq_len>-attention (attention, four times their epochs; `docs/zoology.md` maps
every setting and says why), run into one records directory each under the report's --out, so a
rerun resumes.

A point is (mixer, seq_len, d_model). Its lr is the one with the best mean validation accuracy
over seeds (Zoology takes the best of its four lrs on its test set, which is also its validation
set); its value is the mean test accuracy of that lr's seeds, every seed drawn as a dot.
Diverged runs score 0 and failed runs are left out, as in the leaderboards. The acceptance
checks, stated before the runs:

- attention reaches SOLVED test accuracy at every point;
- for each linear base: at the smallest d_model, accuracy at the largest seq_len is below
  accuracy at the smallest; at the largest seq_len, accuracy rises with d_model (never falls
  from one width to the next, and ends above where it started).

The SLA twins get the same two checks, reported beside the bases' but not part of acceptance.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from slabench.config import RunSpec, expand_grid, load_preset
from slabench.errors import SlabenchError
from slabench.record import RunRecord
from slabench.runners.leaderboard import device_time_line, record_machines, score
from slabench.runners.output import md_table, pct, plt, save_figure

GRIDS = {
    # Per seq_len, the linear mixers (4 epochs) and attention (16): the batch size changes with
    # seq_len and the budget with the mixer, and a grid's lists form a cartesian product.
    "full": tuple(f"zoology-mqar-{t}{m}" for t in (64, 128, 256) for m in ("", "-attention")),
    "tiny": ("zoology-mqar-tiny",),
}
BASES = ("linear", "retnet", "gla", "gdn")
SOLVED = 0.99  # Zoology's early-stopping threshold, and the bar attention must reach


@dataclass(frozen=True)
class Point:
    """One (mixer, seq_len, d_model) at its best lr."""

    mixer: str
    seq_len: int
    d_model: int
    lr: float
    acc: float  # mean test accuracy over the lr's seeds
    seed_accs: tuple[float, ...]


def grid_specs(scale: str) -> list[tuple[str, list[RunSpec]]]:
    """The (name, runs) of each grid of a scale."""
    if scale not in GRIDS:
        raise SlabenchError(f"--scale={scale!r} is not allowed; choose one of {', '.join(GRIDS)}")
    return [expand_grid(load_preset(name)) for name in GRIDS[scale]]


def _where(spec: RunSpec) -> tuple[str, int, int]:
    """The point a run belongs to: (mixer, seq_len, d_model)."""
    return spec.model.name, dict(spec.task.params)["seq_len"], dict(spec.model.params)["d_model"]


def best_points(records: list[RunRecord]) -> dict[tuple[str, int, int], Point]:
    """(mixer, seq_len, d_model) -> its point at the lr with the best mean validation accuracy."""
    runs: dict[tuple[str, int, int], dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if (test := score(r)) is None:
            continue
        spec = RunSpec.from_dict(r["spec"])
        val = r["metrics"].get("val_acc", 0.0) if r["status"] == "ok" else 0.0
        runs[_where(spec)][spec.train.lr].append((val, test))
    points = {}
    for where, by_lr in runs.items():
        lr = max(sorted(by_lr), key=lambda lr: sum(v for v, _ in by_lr[lr]) / len(by_lr[lr]))  # ties: smaller lr
        accs = tuple(t for _, t in by_lr[lr])
        points[where] = Point(*where, lr, sum(accs) / len(accs), accs)
    return points


def _axes(points: dict[tuple[str, int, int], Point]) -> tuple[list[int], list[int]]:
    return sorted({p.seq_len for p in points.values()}), sorted({p.d_model for p in points.values()})


def checks(points: dict[tuple[str, int, int], Point], mixers: set[str]) -> list[tuple[str, str, str, bool]]:
    """(mixer, check, measured, passed) for attention and every base and twin among `mixers`
    (the grids'); the bases' checks and attention's decide acceptance. A point without records
    ('-') fails its check."""
    if not points:
        return []
    seq_lens, widths = _axes(points)
    acc = {k: p.acc for k, p in points.items()}
    out = []
    grid = [(t, d) for t in seq_lens for d in widths]
    missing = [f"{t}/{d}" for t, d in grid if ("attention", t, d) not in acc]
    low = [f"{t}/{d}: {pct(acc[('attention', t, d)])}" for t, d in grid if acc.get(("attention", t, d), 1) < SOLVED]
    out.append(
        (
            "attention",
            f"test accuracy >= {pct(SOLVED)}% at every (seq_len, d_model)",
            "missing " + ", ".join(missing) if missing else ("; ".join(low) or f"all {len(grid)} points"),
            not missing and not low,
        )
    )
    short, long, narrow = seq_lens[0], seq_lens[-1], widths[0]
    for mixer in [m for b in BASES for m in (b, f"sla-{b}") if m in mixers]:
        a, b = acc.get((mixer, long, narrow)), acc.get((mixer, short, narrow))
        out.append(
            (
                mixer,
                f"d_model {narrow}: acc at seq_len {long} < acc at seq_len {short}",
                f"{pct(a)} vs {pct(b)}",
                a is not None and b is not None and a < b,
            )
        )
        curve = [acc.get((mixer, long, d)) for d in widths]
        known = None not in curve
        rising = known and all(y >= x for x, y in pairwise(curve)) and curve[-1] > curve[0]
        out.append(
            (
                mixer,
                f"seq_len {long}: acc rises with d_model ({', '.join(map(str, widths))})",
                " -> ".join(pct(c) for c in curve),
                rising,
            )
        )
    return out


def figure(points: dict[tuple[str, int, int], Point], path: Path) -> Path:
    """Zoology's Figure 2 layout: a panel per seq_len, accuracy vs d_model; the top row the
    linear bases, the bottom row their SLA twins, attention in both."""
    seq_lens, widths = _axes(points)
    rows = [("attention", *BASES), ("attention", *(f"sla-{b}" for b in BASES))]
    fig, axes = plt.subplots(2, len(seq_lens), figsize=(3.6 * len(seq_lens), 6.4), sharex=True, sharey=True)
    axes = [[axes[r][c] if len(seq_lens) > 1 else axes[r] for c in range(len(seq_lens))] for r in range(2)]
    colors = {m: f"C{i}" for i, m in enumerate(["attention", *BASES])}
    for r, mixers in enumerate(rows):
        for c, t in enumerate(seq_lens):
            ax = axes[r][c]
            for m in mixers:
                line = [points[(m, t, d)] for d in widths if (m, t, d) in points]
                if not line:
                    continue
                color = colors[m.removeprefix("sla-")]
                ax.plot([p.d_model for p in line], [p.acc for p in line], "o-", color=color, label=m)
                for p in line:
                    ax.scatter([p.d_model] * len(p.seed_accs), p.seed_accs, s=10, alpha=0.5, color=color)
            ax.set_xscale("log", base=2)
            ax.set_xticks(widths, [str(d) for d in widths])
            ax.set(ylim=(-0.03, 1.03), title=f"seq_len {t}" + (", SLA twins" if r else ""))
            if r == 1:
                ax.set_xlabel("d_model")
            if c == 0:
                ax.set_ylabel("MQAR test accuracy")
        axes[r][-1].legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def write_zoology(records: list[RunRecord], scale: str, md_path: Path) -> str:
    """Write the Markdown (table, checks, figure next to it) from records; the verdict: 'pass'
    when every acceptance check passed, 'fail' when one did, 'incomplete' while some of the grids'
    runs have no record (a point's best lr may be among them, so no check is final)."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    points = best_points(records)
    grids = grid_specs(scale)
    # A point with some of its lrs unrecorded shows the best of those recorded, marked.
    planned_at = Counter(_where(s) for _, specs in grids for s in specs)
    recorded_at = Counter(_where(RunSpec.from_dict(r["spec"])) for r in records)
    partial = {k for k in points if recorded_at[k] < planned_at[k]}
    cell = {k: (pct(p.acc) + "*" * (k in partial), f"{p.lr:.2g}") for k, p in points.items()}
    seq_lens, widths = _axes(points)
    planned = sum(planned_at.values())
    results = checks(points, {s.model.name for _, specs in grids for s in specs})
    accepted = bool(results) and all(ok for m, _, _, ok in results if not m.startswith("sla-"))
    verdict = "incomplete" if len(records) < planned else "pass" if accepted else "fail"
    missing = f"; {planned - len(records)} runs not recorded yet, no check is final" if verdict == "incomplete" else ""
    descriptions = [load_preset(name)["description"] for name in GRIDS[scale]]
    failed = sum(r["status"] == "failed" for r in records)
    grid_files = ", ".join(f"`slabench/presets/{n}.toml`" for n in GRIDS[scale])
    lines = [
        "# Zoology Figure 2: MQAR accuracy vs d_model",
        "",
        (
            f"Generated by `slabench report zoology --scale {scale}` from {len(records)} of the grids' "
            f"{planned} runs ({failed} failed); do not edit by hand. Grids: {grid_files}. "
            "Settings and every difference from Zoology: `docs/zoology.md`."
        ),
        "",
        *(f"- {d}" for d in descriptions),
        "",
        f"Machines: {', '.join(record_machines(records)) or '-'}. {device_time_line(records)}".strip(),
        "",
        f"Acceptance: **{verdict}** (the attention and linear-base checks below{missing}).",
        "",
    ]
    if points:
        mixers = sorted({p.mixer for p in points.values()}, key=lambda m: (m != "attention", m.startswith("sla-"), m))
        header = ["mixer", *(f"T{t} d{d}" for t in seq_lens for d in widths)]
        lines += [
            "Test accuracy (%) at the lr chosen on validation (mean over seeds), then that lr; T seq_len, d d_model."
            + (" *: some of the point's runs are not recorded yet; the best of those that are." if partial else ""),
            "",
            md_table(
                header,
                [[m, *(cell.get((m, t, d), ("-",))[0] for t in seq_lens for d in widths)] for m in mixers],
            ),
            "",
            md_table(
                ["mixer (lr)", *header[1:]],
                [[m, *(cell.get((m, t, d), ("-", "-"))[1] for t in seq_lens for d in widths)] for m in mixers],
            ),
            "",
            md_table(
                ["mixer", "check", "measured", "verdict"],
                [[m, c, v, "pass" if ok else "fail"] for m, c, v, ok in results],
            ),
            "",
        ]
        plot = figure(points, md_path.with_suffix(".png"))
        lines += [f"![MQAR accuracy vs d_model]({plot.name})", ""]
    if scale == "tiny":
        lines += ["Scale `tiny`: CPU test sizes; the numbers exercise the pipeline, not the mixers.", ""]
    md_path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return verdict
