"""The five sections of the SLA report: for each claim its tables, its figure and its verdict.

A section takes a section's run records (or the sweep directory), writes its PNG next to the
report and returns its Markdown lines and its verdict (rules in `report_rules`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.output import interval, md_table, pct, plt, save_figure, yerr
from slabench.runners.report_data import (
    d_model_condition,
    gate_series,
    heads_condition,
    latest_sweep,
    noise_condition,
    paired_gains,
    section_cells,
    twin_pairs,
)
from slabench.runners.report_rules import (
    ACCURACY_RULE,
    COST_RULE,
    GATES_RULE,
    HEADS_RULE,
    accuracy_verdict,
    cost_verdict,
    gates_verdict,
    heads_verdict,
)


def _accuracy_table(
    cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any], label: Callable[[Any], str]
) -> str:
    conds = sorted({condition(c) for c in cells})
    mixers = sorted({c["mixer"] for c in cells}, key=lambda m: (m.removeprefix("sla-"), m))
    index = {(c["mixer"], condition(c)): c for c in cells}
    rows = [
        [m]
        + [
            pct(index[(m, k)]["acc"], index[(m, k)]["acc_lo"], index[(m, k)]["acc_hi"])
            + f" ({index[(m, k)]['solved']}/{index[(m, k)]['seeds']} solved)"
            if (m, k) in index
            else "-"
            for k in conds
        ]
        for m in mixers
    ]
    return md_table(["mixer"] + [label(k) for k in conds], rows)


def _plot_lines(
    ax: Any,
    cells: list[dict[str, Any]],
    x_of: Callable[[dict[str, Any]], Any],
    select: Callable[[dict[str, Any]], bool],
    xlabel: str,
    log2: bool = False,
) -> None:
    for mixer in sorted({c["mixer"] for c in cells}):
        pts = sorted((x_of(c), c) for c in cells if c["mixer"] == mixer and select(c))
        if pts:
            ax.errorbar(
                [x for x, _ in pts],
                [100 * c["acc"] for _, c in pts],
                yerr=yerr([c for _, c in pts]),
                marker="o",
                capsize=3,
                label=mixer,
                linestyle="--" if mixer.startswith("sla-") else "-",
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    if log2:  # powers of two (lengths, widths): label the measured values, not 2^k
        xs = sorted({x_of(c) for c in cells if select(c)})
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()


def _verdict_lines(verdict: str, rule: str, details: list[str]) -> list[str]:
    return [f"**Verdict: {verdict}.**", "", f"Rule: {rule}", ""] + details


def _votes_table(details: dict[str, dict]) -> str:
    return md_table(
        ["base", "SLA twin mean acc %", "base mean acc %", "twin wins", "twin losses", "conditions", "vote"],
        [
            [
                b,
                pct(d["twin_mean"]),
                pct(d["base_mean"]),
                str(d["wins"]),
                str(d["losses"]),
                str(d["conditions"]),
                d["vote"],
            ]
            for b, d in details.items()
        ],
    )


def noise_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = section_cells(records)
    verdict, details = accuracy_verdict(twin_pairs(cells, noise_condition))
    lines = [
        "## 1. Retrieval under noise (claim 1)",
        "",
        (
            "Needle in a haystack whose filler tokens are replaced, with probability `noise`, by uniform tokens "
            "(keys and values included). Test accuracy % (micro, over scored value tokens), mean [95% bootstrap CI] "
            "and seeds solved "
            "(test accuracy >= the grid's solve_at), per (noise, seq_len):"
        ),
        "",
    ]
    lines += [_accuracy_table(cells, noise_condition, lambda k: f"noise {k[0]:g}, T {k[1]}"), ""]
    if cells:
        noises = defaultdict(set)
        for c in cells:
            noises[c["task_params"]["seq_len"]].add(c["task_params"].get("noise", 0.0))
        t_main = max(sorted(noises), key=lambda t: len(noises[t]))  # the length with the noise sweep
        lens = defaultdict(set)
        for c in cells:
            lens[c["task_params"].get("noise", 0.0)].add(c["task_params"]["seq_len"])
        n_main = max(sorted(lens), key=lambda n: len(lens[n]))  # the noise with the length sweep
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_lines(
            axes[0],
            cells,
            lambda c: c["task_params"].get("noise", 0.0),
            lambda c: c["task_params"]["seq_len"] == t_main,
            "noise",
        )
        axes[0].set_title(f"needle, seq_len {t_main}")
        _plot_lines(
            axes[1],
            cells,
            lambda c: c["task_params"]["seq_len"],
            lambda c: c["task_params"].get("noise", 0.0) == n_main,
            "seq_len",
            log2=True,
        )
        axes[1].set_title(f"needle, noise {n_main:g}")
        axes[1].legend(fontsize=7)
        lines += [f"![noise]({save_figure(fig, out_dir / f'{stem}-noise.png', dpi=100).name})", ""]
    lines += _verdict_lines(
        verdict, ACCURACY_RULE + " Conditions: every (noise, seq_len) pair.", [_votes_table(details), ""]
    )
    return lines, verdict


def mqar_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = section_cells(records)
    verdict, details = accuracy_verdict(twin_pairs(cells, d_model_condition))
    lines = [
        "## 2. MQAR recall vs d_model and state size (claim 1 without noise)",
        "",
        "Multi-query associative recall; test accuracy %, mean [95% bootstrap CI] and seeds solved, per d_model:",
        "",
    ]
    lines += [_accuracy_table(cells, d_model_condition, lambda d: f"d_model {d}"), ""]
    sizes = sorted({(c["mixer"], c["model_params"]["d_model"], c["state_size"]) for c in cells if c["state_size"]})
    if sizes:
        lines += ["State size (elements of recurrent state per sequence, all layers):", ""]
        lines += [md_table(["mixer", "d_model", "state size"], [[m, str(d), str(s)] for m, d, s in sizes]), ""]
    if cells:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_lines(axes[0], cells, d_model_condition, lambda c: True, "d_model", log2=True)
        _plot_lines(
            axes[1], cells, lambda c: c["state_size"] or 0, lambda c: bool(c["state_size"]), "state size (elements)"
        )
        axes[1].set_xscale("log")
        axes[1].legend(fontsize=7)
        lines += [f"![mqar]({save_figure(fig, out_dir / f'{stem}-mqar.png', dpi=100).name})", ""]
    lines += _verdict_lines(verdict, ACCURACY_RULE + " Conditions: every d_model.", [_votes_table(details), ""])
    return lines, verdict


def heads_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = section_cells(records)
    gains = paired_gains(records)
    verdict, details = heads_verdict(gains)
    lines = [
        "## 3. Gain vs number of heads (claim 2)",
        "",
        "MQAR at fixed d_model; test accuracy %, mean [95% bootstrap CI] and seeds solved, per heads H:",
        "",
    ]
    lines += [_accuracy_table(cells, heads_condition, lambda h: f"H {h}"), ""]
    hs = sorted({h for pts in gains.values() for h, _ in pts})
    rows = []
    for base, pts in gains.items():
        cols = []
        for h in hs:
            g = [x for hh, x in pts if hh == h]
            cols.append(pct(*stats.mean_ci(g)) + f" (n={len(g)})" if g else "-")
        rows.append([base] + cols)
    lines += ["SLA gain (twin - base, pp, paired by seed):", ""] + [
        md_table(["base"] + [f"H {h}" for h in hs], rows),
        "",
    ]
    if gains:
        fig, ax = plt.subplots(figsize=(5, 4))
        for base, pts in gains.items():
            per_h = [
                {"H": h, **dict(zip(("acc", "acc_lo", "acc_hi"), stats.mean_ci([x for hh, x in pts if hh == h])))}
                for h in hs
                if any(hh == h for hh, _ in pts)
            ]  # acc: the mean gain at H, with its interval
            ax.errorbar(
                [p["H"] for p in per_h],
                [100 * p["acc"] for p in per_h],
                yerr=yerr(per_h),
                marker="o",
                capsize=3,
                label=f"sla-{base} - {base}",
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("heads H")
        ax.set_ylabel("accuracy gain (pp)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        lines += [f"![heads]({save_figure(fig, out_dir / f'{stem}-heads.png', dpi=100).name})", ""]
    votes = md_table(
        ["base", "slope (gain per doubling of H)", "points", "vote"],
        [
            [
                b,
                interval(d["slope"], d["slope"] - d["slope_ci"], d["slope"] + d["slope_ci"]),
                str(d["points"]),
                d["vote"],
            ]
            for b, d in details.items()
        ],
    )
    lines += _verdict_lines(verdict, HEADS_RULE, [votes, ""])
    return lines, verdict


def gates_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    series = gate_series(records)
    deltas = {
        f"{m} H{h} layer {layer} {g}-gate": [c[-1]["entropy"] - c[0]["entropy"] for c in curves]
        for (m, h, layer, g), curves in series.items()
    }
    verdict, details = gates_verdict(deltas)
    lines = [
        "## 4. Gate dynamics (claim 3)",
        "",
        (
            "From the curves of every SLA run above (logged at each evaluation): normalised gate entropy "
            "(entropy / log H; 1 = uniform, 0 = one-hot) and mean largest gate. Initial = first evaluation, "
            "final = last; mean [95% bootstrap CI] over runs."
        ),
        "",
    ]
    rows = []
    for (m, h, layer, g), curves in series.items():
        d = details[f"{m} H{h} layer {layer} {g}-gate"]
        rows.append(
            [
                m,
                str(h),
                str(layer),
                g,
                str(d["runs"]),
                interval(*stats.mean_ci([c[0]["entropy"] for c in curves])),
                interval(*stats.mean_ci([c[-1]["entropy"] for c in curves])),
                interval(d["delta"], d["delta_lo"], d["delta_hi"]),
                interval(*stats.mean_ci([c[0]["max"] for c in curves])),
                interval(*stats.mean_ci([c[-1]["max"] for c in curves])),
                d["vote"],
            ]
        )
    lines += [
        md_table(
            [
                "mixer",
                "H",
                "layer",
                "gate",
                "runs",
                "initial entropy",
                "final entropy",
                "change",
                "initial max gate",
                "final max gate",
                "vote",
            ],
            rows,
        ),
        "",
    ]
    if series:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for (m, h, layer, g), curves in series.items():
            for ax, what in zip(axes, ("entropy", "max")):
                by_step: dict[int, list[float]] = defaultdict(list)
                for c in curves:
                    for p in c:
                        by_step[p["step"]].append(p[what])
                steps = sorted(by_step)
                ax.plot(
                    steps,
                    [sum(by_step[s]) / len(by_step[s]) for s in steps],
                    label=f"{m} H{h} L{layer} {g}",
                    linestyle="-" if g == "q" else "--",
                )
        axes[0].set_ylabel("gate entropy / log H")
        axes[1].set_ylabel("mean max gate")
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=6)
        lines += [f"![gates]({save_figure(fig, out_dir / f'{stem}-gates.png', dpi=100).name})", ""]
    lines += _verdict_lines(verdict, GATES_RULE, [])
    return lines, verdict


def cost_section(records: list[RunRecord], speed_dir: Path) -> tuple[list[str], str]:
    lines = ["## 5. Cost: time and memory (claim 4)", ""]
    sweep = latest_sweep(speed_dir)
    verdict, c = cost_verdict(sweep[1]["summary"] if sweep else None)
    if sweep is None:
        missing = (
            f"No speed sweep found: `{speed_dir}/*.json` is missing. Produce it with `slabench sweep` (on a GPU: "
            "`slabench sweep --device cuda --out leaderboards/speed`), then rerun `slabench report sla --from-records`."
        )
        lines += [missing, ""]
    else:
        path, data = sweep
        m = data.get("machine", {})
        source = (
            f"From `{path.name}` (sweep of {data.get('timestamp', '?')}, device "
            f"{m.get('device_name', m.get('device', '?'))}); time ratios from the {c['mode']} timings."
        )
        overhead = [[b, interval(r, fmt=".2f")] for b, r in c["overhead"].items()]
        slopes = [
            [s["mixer"]] + [interval(s[k], fmt=".2f") for k in ("time", "base_time", "memory")] for s in c["slopes"]
        ]
        slope_header = ["mixer", "time slope vs T", "base's time slope", "memory slope vs T"]
        lines += [
            source,
            "",
            md_table(["base", "median sla-X / X time"], overhead),
            "",
            md_table(slope_header, slopes),
            "",
        ]
    # Beside the sweep: the training runs' own step time and peak memory, per base / twin pair.
    by_mixer: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok":
            by_mixer[r["spec"]["model"]["name"]].append(r)
    pairs = sorted(m[4:] for m in by_mixer if m.startswith("sla-") and m[4:] in by_mixer)
    if pairs:

        def stat(mixer: str, key: str) -> float:
            return stats.mean([r["timings"][key] for r in by_mixer[mixer]])

        rows = [
            [b]
            + [interval(x, fmt=".2f") for x in (stat(b, "step_ms"), stat(f"sla-{b}", "step_ms"))]
            + [interval(stat(f"sla-{b}", "step_ms") / stat(b, "step_ms"), fmt=".2f")]
            + [interval(stat(x, "peak_memory_bytes") / 2**20, fmt=".0f") for x in (b, f"sla-{b}")]
            for b in pairs
        ]
        header = ["base", "step ms", "sla step ms", "ratio", "peak MiB", "sla peak MiB"]
        intro = (
            "Training runs of the sections above (mean over all their runs; packed several per device, so "
            "indicative only):"
        )
        lines += [intro, "", md_table(header, rows), ""]
    lines += _verdict_lines(verdict, COST_RULE, [])
    return lines, verdict
