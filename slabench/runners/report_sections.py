"""The five sections of the SLA report: for each claim its tables, its figure and its verdict.

A section takes a section's run records (or the sweep directory), writes its PNG next to the
report and returns its Markdown lines and its verdict (rules in `report_rules`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from slabench.models.arms import arm
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.output import interval, legend, md_table, pct, plt, save_figure, yerr
from slabench.runners.report_data import (
    Arms,
    bases,
    contrasts,
    d_model_condition,
    gate_series,
    heads_condition,
    latest_sweep,
    noise_condition,
    noise_gains,
    paired_gains,
    section_cells,
)
from slabench.runners.report_rules import (
    CEILING,
    CONTRAST_TITLES,
    CONTRASTS,
    COST_RULE,
    EXPLAIN_RULE,
    FIXED_RULE,
    GATES_RULE,
    HEADS_EXPLAIN_RULE,
    HEADS_FIXED_RULE,
    HEADS_RULE,
    LEARNS,
    MQAR_RULE,
    NOISE_RULE,
    OPTIONAL_CONTRASTS,
    accuracy_verdict,
    cost_verdict,
    gates_verdict,
    heads_verdict,
)
from slabench.runners.sweep.analysis import paths_label


class Section(NamedTuple):
    """A section of the report: its Markdown, its verdict and, for a claim decided by votes per
    base (the grid sections), each base's vote (so the report can tell whether the runs still to
    come can change it); None for the gates' and cost claims."""

    lines: list[str]
    verdict: str
    votes: dict[str, str] | None = None
    # base -> which arm explains sla-X's difference from X (claim 1) or its gain's slope in H (claim
    # 2), for the bases where there is one; None for a claim not decided per base.
    explained: dict[str, str] | None = None


def _per_base(details: dict[str, dict], in_heads: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """A grid section's votes per base and, where sla-X differs from X, which way and what explains
    it: a pooled gain in solve rate (claim 1) or, `in_heads`, a slope of the gain in log2 H (claim 2)."""
    explained = {}
    for b, d in details.items():
        if d["differs"]:
            way = (
                f"sla-{b}'s gain {'grows' if d['slope'] > 0 else 'falls'} with H"
                if in_heads
                else f"sla-{b} {'ahead' if d['tests']['sla']['delta'] > 0 else 'behind'}"
            )
            explained[b] = f"{way}: {d['explain']}"
    return {b: d["vote"] for b, d in details.items()}, explained


def _arm_order(label: str) -> tuple:
    """Rows by base, then X, its variants, sla-X, its variants."""
    mixer = label.split("/")[0]
    return mixer.removeprefix("sla-"), mixer.startswith("sla-"), label


def _accuracy_table(
    cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any], label: Callable[[Any], str]
) -> str:
    conds = sorted({condition(c) for c in cells})
    arms = sorted({c["arm"] for c in cells}, key=_arm_order)
    index = {(c["arm"], condition(c)): c for c in cells}
    rows = [
        [m]
        + [
            pct(index[(m, k)]["acc"], index[(m, k)]["acc_lo"], index[(m, k)]["acc_hi"])
            + f" ({index[(m, k)]['solved']}/{index[(m, k)]['seeds']} solved)"
            if (m, k) in index
            else "-"
            for k in conds
        ]
        for m in arms
    ]
    return md_table(["arm"] + [label(k) for k in conds], rows)


def _lr_table(
    cells: list[dict[str, Any]],
    condition: Callable[[dict[str, Any]], Any],
    label: Callable[[Any], str],
    choice: dict[tuple[str, str], dict],
) -> list[str]:
    """The lr each cell kept in stage 1, or nothing without a choice: * at the edge of the sweep,
    ** there and below the ceiling, where an lr beyond the sweep may have suited the arm better (a
    cell at the ceiling has nothing left to gain)."""
    if not choice or not cells:
        return []
    conds = sorted({condition(c) for c in cells})
    arms = sorted({c["arm"] for c in cells}, key=_arm_order)
    index = {(c["arm"], condition(c)): choice.get((c["task"], c["model"])) for c in cells}

    def mark(ch: dict) -> str:
        return "" if not ch["edge"] else "*" if ch["val"][ch["lr"]] >= CEILING else "**"

    rows = [[m] + [f"{ch['lr']:g}{mark(ch)}" if (ch := index.get((m, k))) else "-" for k in conds] for m in arms]
    lrs = sorted({lr for ch in choice.values() for lr in ch["lrs"]})
    kept = [ch for ch in index.values() if ch]
    below = sum(mark(ch) == "**" for ch in kept)
    return [
        (
            f"lr kept per cell in stage 1 (best mean validation accuracy over lrs {', '.join(f'{x:g}' for x in lrs)}; "
            f"* at the edge of the sweep; ** at the edge with that accuracy below the ceiling ({CEILING:.0%}), "
            f"{below} of {len(kept)} cells: an lr beyond the sweep may have suited the arm better there, so its "
            "runs may understate it):"
        ),
        "",
        md_table(["arm"] + [label(k) for k in conds], rows),
        "",
    ]


def _plot_lines(
    ax: Any,
    cells: list[dict[str, Any]],
    x_of: Callable[[dict[str, Any]], Any],
    select: Callable[[dict[str, Any]], bool],
    xlabel: str,
    log2: bool = False,
) -> None:
    for label in sorted({c["arm"] for c in cells}, key=_arm_order):
        pts = sorted((x_of(c), c) for c in cells if c["arm"] == label and select(c))
        if pts:
            ax.errorbar(
                [x for x, _ in pts],
                [100 * c["acc"] for _, c in pts],
                yerr=yerr([c for _, c in pts]),
                marker="o",
                capsize=3,
                label=label,
                linestyle="--" if label.startswith("sla-") else "-",
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    if log2:  # powers of two (lengths, widths): label the measured values, not 2^k
        xs = sorted({x_of(c) for c in cells if select(c)})
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()


def _seeds_text(n: int | float) -> str:
    return "no finite number" if not math.isfinite(n) else f"{n}"


def _verdict_lines(
    verdict: str, rule: str, details: list[str], more: int | None = None, unit: str = "cell", have: int = 0
) -> list[str]:
    """have: the seeds per unit run so far (the fewest of a counted cell), to say how many more."""
    decide = ""
    if verdict == "inconclusive":
        extra = f" (so far at least {have})" if more and have else ""
        decide = (
            f" {more} seeds per {unit}{extra} would give a majority of the votes 80% power at their observed effects."
            if more
            else " A majority of the votes is decided, for and against: seeds alone would not decide it."
            if more == 0
            else " No finite number of seeds gives a majority of the votes 80% power: seeds alone would not decide it."
        )
    return [f"**Verdict: {verdict}.**{decide}", "", f"Rule: {rule}", ""] + details


def _contrast_table(tests_by_base: dict[str, dict[str, dict]]) -> str:
    """Per base and contrast: arms, the stratified gain in solve rate with its interval, p, pairs."""
    rows = []
    for base, tests in tests_by_base.items():
        arms = Arms.of(base)
        one_arm = arms.one_arm(CONTRASTS)
        for name, a, b in CONTRASTS:
            t = tests.get(name)
            if t is None and name in OPTIONAL_CONTRASTS:
                continue  # an arm this grid does not run
            rows.append(
                [base, CONTRAST_TITLES[name], f"{getattr(arms, a)} - {getattr(arms, b)}"]
                + (
                    [pct(t["delta"], t["lo"], t["hi"]), f"{t['p']:.3g}", f"{t['n']} in {t['conditions']}"]
                    if t
                    else ["-", "-", "one arm: nothing to test" if name in one_arm else "arm missing"]
                )
            )
    return md_table(["base", "contrast", "arms", "solve-rate gain, pp", "p", "pairs in conditions"], rows)


def _accuracy_claim(
    cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any], interaction: bool
) -> tuple[str, dict[str, dict], int | None, dict[str, dict[str, dict]]]:
    strata = contrasts(cells, condition, CONTRASTS)
    tests = {b: {n: stats.stratified_compare(st) for n, st in by.items()} for b, by in strata.items()}
    per_base = {}
    for base in bases(cells):
        seeds = min((c["seeds"] for c in cells if c["arm"] in (base, f"sla-{base}")), default=0)
        slope = None
        if interaction:
            pts = noise_gains(cells, base)
            fit = stats.slope_fit([x for x, _ in pts], [g for _, g in pts])
            slope = (*fit, sorted({x for x, _ in pts}))
        base_cells = [c for c in cells if c["arm"] == base]
        ceiling = bool(base_cells) and all(min(c["seed_solved"], default=0.0) == 1.0 for c in base_cells)
        per_base[base] = {
            "tests": tests.get(base, {}),
            "seeds": seeds,
            "slope": slope,
            "ceiling": ceiling,
            "one_arm": Arms.of(base).one_arm(CONTRASTS),
        }
    verdict, details, more = accuracy_verdict(per_base, interaction)
    return verdict, details, more, tests


def _votes_table(details: dict[str, dict], interaction: bool) -> str:
    rows = []
    for b, d in details.items():
        main = d["tests"].get("sla")
        row = [b, pct(main["delta"], main["lo"], main["hi"]) if main else "-", f"{main['p']:.3g}" if main else "-"]
        if interaction:
            slope, half = (d["slope"] or (math.nan, math.nan))[:2]
            row.append(interval(100 * slope, 100 * (slope - half), 100 * (slope + half), fmt=".1f"))
        rows.append(row + [d["explain"], d["vote"], _seeds_text(d["seeds_needed"]) if d["vote"] == "neither" else "-"])
    header = ["base", "sla-X - X solve rate, pp", "p"]
    header += ["gain slope vs noise, pp per unit"] if interaction else []
    return md_table(header + ["explained by", "vote", "seeds per cell for 80% power"], rows)


def _accuracy_verdict_lines(
    verdict: str, rule: str, details: dict[str, dict], more: int | None, interaction: bool
) -> list[str]:
    """Claim 1's verdict, its rule and the votes per base (`_accuracy_claim`'s details)."""
    have = min((d["seeds"] for d in details.values()), default=0)
    held = any(set(OPTIONAL_CONTRASTS) & set(d["tests"]) for d in details.values())
    rule += EXPLAIN_RULE + (FIXED_RULE if held else "")
    return _verdict_lines(verdict, rule, [_votes_table(details, interaction), ""], more, have=have)


def noise_section(records: list[RunRecord], out_dir: Path, stem: str, choice: dict[tuple[str, str], dict]) -> Section:
    cells = section_cells(records)
    verdict, details, more, tests = _accuracy_claim(cells, noise_condition, interaction=True)
    label = lambda k: f"noise {k[0]:g}, T {k[1]}"  # noqa: E731
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
    lines += [_accuracy_table(cells, noise_condition, label), ""]
    lines += _lr_table(cells, noise_condition, label, choice)
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
    lines += ["Contrasts, solve rates pooled over every (noise, seq_len) condition (stratified exact test):", ""]
    lines += [_contrast_table(tests), ""]
    lines += _accuracy_verdict_lines(verdict, NOISE_RULE, details, more, interaction=True)
    return Section(lines, verdict, *_per_base(details))


def mqar_section(records: list[RunRecord], out_dir: Path, stem: str, choice: dict[tuple[str, str], dict]) -> Section:
    cells = section_cells(records)
    verdict, details, more, tests = _accuracy_claim(cells, d_model_condition, interaction=False)
    label = lambda d: f"d_model {d}"  # noqa: E731
    lines = [
        "## 2. MQAR recall vs d_model and state size (claim 1 without noise)",
        "",
        "Multi-query associative recall; test accuracy %, mean [95% bootstrap CI] and seeds solved, per d_model:",
        "",
    ]
    lines += [_accuracy_table(cells, d_model_condition, label), ""]
    lines += _lr_table(cells, d_model_condition, label, choice)
    sizes = sorted({(c["arm"], c["model_params"]["d_model"], c["state_size"]) for c in cells if c["state_size"]})
    if sizes:
        lines += ["State size (elements of recurrent state per sequence, all layers):", ""]
        lines += [md_table(["arm", "d_model", "state size"], [[m, str(d), str(s)] for m, d, s in sizes]), ""]
    if cells:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_lines(axes[0], cells, d_model_condition, lambda c: True, "d_model", log2=True)
        _plot_lines(
            axes[1], cells, lambda c: c["state_size"] or 0, lambda c: bool(c["state_size"]), "state size (elements)"
        )
        axes[1].set_xscale("log")
        axes[1].legend(fontsize=7)
        lines += [f"![mqar]({save_figure(fig, out_dir / f'{stem}-mqar.png', dpi=100).name})", ""]
    lines += [
        "Contrasts, solve rates pooled over every d_model (stratified exact test):",
        "",
        _contrast_table(tests),
        "",
    ]
    lines += _accuracy_verdict_lines(verdict, MQAR_RULE, details, more, interaction=False)
    return Section(lines, verdict, *_per_base(details))


def _heads_widths(cells: list[dict[str, Any]]) -> list[tuple[int, str, int]]:
    """(H, d_model, pairs) per H; where the bases differ in head dimension, each d_model with the
    bases at it ("32 (retnet) or 64 (gdn, gla)"), the twin's arms under their base."""
    out = []
    for h, k in sorted({(c["model_params"]["n_heads"], c["task_params"]["num_kv_pairs"]) for c in cells}):
        at = [c for c in cells if c["model_params"]["n_heads"] == h and c["task_params"]["num_kv_pairs"] == k]
        by_width = defaultdict(set)
        for c in at:
            by_width[c["model_params"]["d_model"]].add(c["mixer"].removeprefix("sla-"))
        named = [f"{d} ({', '.join(sorted(b))})" for d, b in sorted(by_width.items())]
        out.append((h, " or ".join(named) if len(by_width) > 1 else str(next(iter(by_width))), k))
    return out


def heads_section(records: list[RunRecord], out_dir: Path, stem: str, choice: dict[tuple[str, str], dict]) -> Section:
    cells = section_cells(records)
    counts = lambda x: LEARNS <= x["acc"] <= CEILING  # noqa: E731  (X learns, below the ceiling)
    # Every base votes through the rule: one with no H in range has no points, so is untestable.
    gains = {b: [] for b in bases(cells)} | paired_gains(cells, counts=counts)
    # Every contrast at every H: the table shows them all, and heads_verdict reads each at the H that count.
    all_gains = {name: paired_gains(cells, a, b) for name, a, b in CONTRASTS}  # no rows where an arm did not run
    verdict, details, more = heads_verdict(gains, all_gains)
    label = lambda h: f"H {h}"  # noqa: E731
    lines = [
        "## 3. Gain vs number of heads (claim 2)",
        "",
        (
            "MQAR at each number of heads H (H, d_model, key-value pairs: "
            + "; ".join(f"{h}, {d}, {k}" for h, d, k in _heads_widths(cells))
            + "). Test accuracy %, mean [95% bootstrap CI] and seeds solved, per heads H:"
        ),
        "",
    ]
    lines += [_accuracy_table(cells, heads_condition, label), ""]
    lines += _lr_table(cells, heads_condition, label, choice)
    hs = sorted({c["model_params"]["n_heads"] for c in cells})
    rows = []
    for name, by_base in all_gains.items():
        for base, pts in by_base.items():
            cols = []
            for h in hs:
                g = [x for hh, x in pts if hh == h]
                cols.append(pct(*stats.mean_ci(g)) + f" (n={len(g)})" if g else "-")
            rows.append([base, CONTRAST_TITLES[name]] + cols)
    lines += ["Accuracy gains (pp, paired by seed) per contrast and H, at every H:", ""] + [
        md_table(["base", "contrast"] + [f"H {h}" for h in hs], rows),
        "",
    ]
    if all_gains.get("sla"):
        fig, ax = plt.subplots(figsize=(5, 4))
        for base, pts in all_gains.get("sla", {}).items():
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
        [
            "base",
            "H that count",
            "slope (gain per doubling of H)",
            "points",
            "slope explained by",
            "vote",
            "seeds per H for 80% power",
        ],
        [
            [
                b,
                ", ".join(map(str, d["heads"])) or "none",
                interval(d["slope"], d["slope"] - d["slope_ci"], d["slope"] + d["slope_ci"]),
                str(d["points"]),
                d["explain"],
                d["vote"],
                _seeds_text(d["seeds_needed"]) if d["vote"] == "neither" else "-",
            ]
            for b, d in details.items()
        ],
    )
    held = any(all_gains[name] for name in OPTIONAL_CONTRASTS)  # the held gate ran, at any H
    rule = HEADS_RULE + HEADS_EXPLAIN_RULE + (HEADS_FIXED_RULE if held else "")
    lines += _verdict_lines(verdict, rule, [votes, ""], more, unit="H")
    return Section(lines, verdict, *_per_base(details, in_heads=True))


GATES_COVER = (
    "The diagnostics summarise the gates of the last forward pass of each evaluation: the last chunk of the "
    "validation set (up to 256 sequences). Peaked (all) counts every token, filler included, which dominates it; "
    "peaked (recall) counts the recall positions only, each query and the context positions holding its tokens, "
    "where the task reads and writes: the rule's share."
)


def gates_section(records: list[RunRecord], out_dir: Path, stem: str) -> Section:
    series = gate_series(records)
    counted = {k: v for k, v in series.items() if not k[0].endswith("/sigmoid")}
    finals = {
        f"{m} H{h} layer {layer} {g}-gate": [c[-1]["peaked_recall"] for c in curves if "peaked_recall" in c[-1]]
        for (m, h, layer, g), curves in counted.items()
    }
    verdict, details, more = gates_verdict({k: v for k, v in finals.items() if v})
    lines = [
        "## 4. Gate dynamics (claim 3)",
        "",
        (
            "From the curves of the solved runs above (logged at each evaluation): the share of tokens whose "
            "largest gate exceeds 0.9 (peaked), normalised gate entropy (entropy / log H; 1 = uniform, 0 = one-hot) "
            "and mean largest gate. Initial = first evaluation, final = last; mean [95% bootstrap CI] over runs. "
            + GATES_COVER
        ),
        "",
    ]

    def ci(xs: list[float]) -> str:
        return interval(*stats.mean_ci(xs)) if xs else "-"

    def shares(curves: list[list[dict[str, float]]], key: str) -> list[str]:
        """Initial and final `key`, over the runs that logged it."""
        logged = [c for c in curves if key in c[0] and key in c[-1]]
        return [ci([c[0][key] for c in logged]), ci([c[-1][key] for c in logged])]

    rows = []
    for (m, h, layer, g), curves in series.items():
        d = details.get(f"{m} H{h} layer {layer} {g}-gate")
        rows.append(
            [m, str(h), str(layer), g, str(len(curves))]
            + shares(curves, "peaked")
            + shares(curves, "peaked_recall")
            + [ci([c[0]["entropy"] for c in curves]), ci([c[-1]["entropy"] for c in curves])]
            + [ci([c[-1]["max"] for c in curves])]
            + [d["vote"] if d else "not counted"]
        )
    header = ["arm", "H", "layer", "gate", "solved runs", "initial peaked (all)", "final peaked (all)"]
    header += ["initial peaked (recall)", "final peaked (recall)"]
    header += ["initial entropy", "final entropy", "final max gate", "vote"]
    lines += [md_table(header, rows), ""]
    if series and not finals:
        lines += [
            "No solved run logged the peaked share at recall positions (`gate_peaked_recall`): its records predate "
            "the diagnostic.",
            "",
        ]
    if series:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for (m, h, layer, g), curves in series.items():
            for ax, what in zip(axes, ("peaked_recall", "entropy")):
                by_step: dict[int, list[float]] = defaultdict(list)
                for c in curves:
                    for p in c:
                        if what in p:
                            by_step[p["step"]].append(p[what])
                steps = sorted(by_step)
                if steps:
                    ax.plot(
                        steps,
                        [sum(by_step[s]) / len(by_step[s]) for s in steps],
                        label=f"{m} H{h} L{layer} {g}",
                        linestyle="-" if g == "q" else "--",
                    )
        axes[0].set_ylabel("recall positions with largest gate > 0.9")
        axes[1].set_ylabel("gate entropy / log H")
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        crop = legend(axes[1], len(series))
        lines += [f"![gates]({save_figure(fig, out_dir / f'{stem}-gates.png', dpi=100, crop=crop).name})", ""]
    lines += _verdict_lines(verdict, GATES_RULE, [], more, unit="series (solved runs)")
    return Section(lines, verdict)


def _sweep_code(machine: dict[str, Any]) -> str:
    """The sweep's commit, tree state and kernel paths: a sweep older than a kernel (a path that
    is now `reference` no more) times code the runs above did not use."""
    sha, paths = machine.get("git_sha"), machine.get("kernel_paths")
    code = (
        f", code {sha[:7]}{' from a tree with uncommitted changes' if machine.get('git_dirty') else ''}" if sha else ""
    )
    return code + (f"; kernel paths: {paths_label(paths)}" if paths else "")


def _untimed_paths(records: list[RunRecord], sweep: dict[str, Any]) -> str:
    """The kernel paths the newest runs of the swept mixers took that the sweep did not time, as a
    sentence; empty when it timed them all. The newest runs are those of the latest record's
    commit (claim 4 is about the code the runs use now); a swept mixer's control arms (another
    gate kind, another norm) are not in the sweep and are left out. So are the model's own ops,
    those the sweep's training steps ran and none of its mixer layers did (the embedding): every
    arm runs them alike, the claim's layer times leave them out, and the steps take the path their
    own shape calls for (a vocabulary of 8192 takes the embedding's reference, the runs' few
    hundred its kernel), which no rerun changes."""
    timed = {op: set(paths.split(",")) for op, paths in (sweep.get("machine", {}).get("kernel_paths") or {}).items()}
    layer_ops = {op for row in sweep.get("rows") or [] for op in row.get("kernel_paths") or {}}
    model_ops = {op for step in sweep.get("train_steps") or [] for op in step.get("kernel_paths") or {}} - layer_ops
    swept = set((sweep.get("config") or {}).get("mixers") or [])
    runs = [
        r
        for r in records
        if r.get("timestamp")
        and r.get("kernel_paths")
        and arm(r["spec"]["model"]["name"], dict(r["spec"]["model"]["params"])) in swept
    ]
    if not runs:
        return ""
    sha = (max(runs, key=lambda r: datetime.fromisoformat(r["timestamp"])).get("environment") or {}).get("git_sha")
    took = {
        (op, path)
        for r in runs
        if (r.get("environment") or {}).get("git_sha") == sha
        for op, paths in r["kernel_paths"].items()
        for path in paths.split(",")
    }
    missing = sorted((op, path) for op, path in took if op not in model_ops and path not in timed.get(op, set()))
    if not missing:
        return ""
    listed = ", ".join(
        f"{op} {path} (the sweep: {','.join(sorted(timed.get(op, []))) or 'none'})" for op, path in missing
    )
    return (
        f"The newest runs of the swept mixers (code {(sha or 'unknown')[:7]}) took kernel paths this sweep did not "
        f"time: {listed}. Its times are not those of the code the runs use; rerun it as docs/speed.md's reference run."
    )


def cost_section(records: list[RunRecord], speed_dir: Path) -> Section:
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
            f"{m.get('device_name', m.get('device', '?'))}{_sweep_code(m)}); time ratios from the {c['mode']} timings."
        )
        alone = c["overhead_same_norm"]
        overhead = [
            [b, interval(r, fmt=".2f")] + ([interval(alone[b], fmt=".2f") if b in alone else "-"] if alone else [])
            for b, r in c["overhead"].items()
        ]
        overhead_header = ["base", "median sla-X / X time"] + (["the gate alone (same output norm)"] if alone else [])
        slopes = [
            [s["mixer"]] + [interval(s[k], fmt=".2f") for k in ("time", "base_time", "memory")] for s in c["slopes"]
        ]
        slope_header = ["mixer", "time slope vs T", "base's time slope", "memory slope vs T"]
        untimed = _untimed_paths(records, data)
        lines += [
            source,
            "",
            *([untimed, ""] if untimed else []),
            md_table(overhead_header, overhead),
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
    return Section(lines, verdict)
