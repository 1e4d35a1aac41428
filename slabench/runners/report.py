"""The SLA mechanism report (`slabench report sla`): the paper's four claims, each tested on
run records and decided by a rule the report states.

Softmax Linear Attention (arXiv 2602.01744) claims (1) better retrieval under noise for RetNet,
GLA and GDN, (2) gains that grow with the number of heads, (3) head gates that sharpen towards
one-hot as training proceeds, (4) linear time and memory with small overhead. Sections:

    noise  grid report-noise-<scale>  claim 1: needle accuracy vs noise and seq_len
    mqar   grid report-mqar-<scale>   claim 1 without noise: MQAR accuracy vs d_model / state
    heads  grid report-heads-<scale>  claim 2: SLA's gain over its base vs heads H
    gates  (records of the above)     claim 3: gate entropy / log H and max gate over training
    cost   (leaderboards/speed/*.json from `slabench sweep`)  claim 4

The grids are ordinary presets run by `slabench.runners.grid.run_grid`, one records directory
per section under the report's --out, so a rerun skips finished runs and `slabench leaderboard
<out>/<section>` rebuilds each section's leaderboard. The Markdown depends on the records and the
sweep file only (no clock, no paths of the machine), so `--from-records` reproduces it byte for
byte. Statistics are the leaderboards' (`slabench.runners.stats`): mean test accuracy over seeds
with its 95% bootstrap interval and the seeds solved; twin vs base by the exact test paired by
seed; diverged runs score 0 and failed runs are left out, as in the leaderboards.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from slabench.config import RunSpec, expand_grid, load_preset
from slabench.errors import SlabenchError
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.leaderboard import aggregate, record_machines
from slabench.runners.leaderboard import pct as _pct
from slabench.runners.plots import yerr

SCALES = ("tiny", "full")
GRID_SECTIONS = ("noise", "mqar", "heads")
BASES = ("retnet", "gla", "gdn", "linear")
MIN_SEEDS = 3  # a cell with fewer seeds never counts as a significant difference
MIN_SLOPE = 0.01  # claim 2: a gain growing by < 1 pp per doubling of H is no growth
MIN_DROP = 0.05  # claim 3: an entropy drop of < 0.05 (of log H) is no sharpening
LINEAR_SLOPE, SUPERLINEAR_SLOPE = 1.2, 1.5  # claim 4: log-log slopes of time and memory vs T
SLOPE_EXCESS, LARGE_SLOPE_EXCESS = 0.1, 0.3  # claim 4: an sla-X time slope above its base's
SMALL_OVERHEAD, LARGE_OVERHEAD = 1.25, 2.0  # claim 4: median sla-X / X time ratio
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def section_specs(section: str, scale: str) -> tuple[str, list[RunSpec]]:
    if scale not in SCALES:
        raise SlabenchError(f"--scale={scale!r} is not allowed; choose one of {', '.join(SCALES)}")
    return expand_grid(load_preset(f"report-{section}-{scale}"))


# ---- verdict rules (pure functions on aggregates, unit-tested on hand-made ones) --------------


def compare_cells(twin: dict[str, Any], base: dict[str, Any]) -> str:
    """'win' if the exact test (paired by seed) rejects equal accuracy at 5% with the twin ahead,
    'loss' if behind, else 'tie'; a cell with fewer than MIN_SEEDS seeds is never significant."""
    if min(twin["seeds"], base["seeds"]) < MIN_SEEDS:
        return "tie"
    test = stats.compare(dict(zip(twin["seed_ids"], twin["seed_accs"])), dict(zip(base["seed_ids"], base["seed_accs"])))
    return "tie" if test["p"] >= stats.ALPHA else "win" if test["delta"] > 0 else "loss"


def _majority(per_base: dict[str, str]) -> str:
    n = len(per_base)
    if n == 0:
        return INCONCLUSIVE
    votes = list(per_base.values())
    if votes.count("for") > n / 2:
        return SUPPORTED
    if votes.count("against") > n / 2:
        return NOT_SUPPORTED
    return INCONCLUSIVE


ACCURACY_RULE = (
    "For each base, over the conditions (columns) where both ran: the base counts *for* the claim if "
    "the SLA twin's mean accuracy across conditions exceeds the base's and the twin wins (an exact permutation "
    f"test paired by seed rejects equal accuracy at 5%, >= {MIN_SEEDS} seeds per cell, twin ahead) in at least "
    "half of them; *against* if the "
    "reverse (lower mean and losses in at least half); else neither. Supported if a majority of the bases "
    "count for, not supported if a majority count against, else inconclusive. With n paired seeds the test's "
    "smallest p is 2^(1-n), so a cell needs 6 seeds before the twin can win or lose."
)


def accuracy_verdict(pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> tuple[str, dict[str, dict]]:
    """pairs: base -> [(twin cell, base cell) per condition]; a cell has acc, seeds, seed_ids, seed_accs."""
    details = {}
    for base, cells in sorted(pairs.items()):
        if not cells:
            continue
        outcomes = [compare_cells(t, b) for t, b in cells]
        twin_mean = sum(t["acc"] for t, _ in cells) / len(cells)
        base_mean = sum(b["acc"] for _, b in cells) / len(cells)
        half = len(cells) / 2
        vote = ("for" if twin_mean > base_mean and outcomes.count("win") >= half else
                "against" if twin_mean < base_mean and outcomes.count("loss") >= half else "neither")
        details[base] = {"twin_mean": twin_mean, "base_mean": base_mean, "wins": outcomes.count("win"),
                         "losses": outcomes.count("loss"), "conditions": len(cells), "vote": vote}
    return _majority({b: d["vote"] for b, d in details.items()}), details


def mean_ci(xs: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% bootstrap interval (nan bounds for fewer than 2 values)."""
    return (stats.mean(xs), *stats.bootstrap_mean(xs))


HEADS_RULE = (
    "For each base, the per-seed gains (twin accuracy - base accuracy, paired by seed) are regressed on "
    "log2 H. The base counts *for* the claim if the slope's 95% interval lies above 0, else *against* if it "
    f"lies below {MIN_SLOPE:g} (less than {100 * MIN_SLOPE:g} pp more gain per doubling of H, with confidence), "
    "else neither. Supported / not supported by a majority of the bases, else inconclusive."
)


def heads_verdict(gains: dict[str, list[tuple[int, float]]]) -> tuple[str, dict[str, dict]]:
    """gains: base -> [(H, paired per-seed gain)]."""
    details = {}
    for base, points in sorted(gains.items()):
        slope, ci = stats.slope_ci([math.log2(h) for h, _ in points], [g for _, g in points])
        vote = ("neither" if math.isnan(ci) else "for" if slope - ci > 0 else
                "against" if slope + ci < MIN_SLOPE else "neither")
        details[base] = {"slope": slope, "slope_ci": ci, "points": len(points), "vote": vote}
    return _majority({b: d["vote"] for b, d in details.items()}), details


GATES_RULE = (
    "For each SLA mixer, number of heads, layer and gate (q, k), over every run of the sections above: the change of the "
    "normalised gate entropy (entropy / log H: 1 uniform, 0 one-hot) from the first logged evaluation to "
    f"the last. A series counts *for* the claim if the mean change's 95% interval lies below -{MIN_DROP:g} (the "
    f"entropy fell by more than {MIN_DROP:g}, with confidence), *against* if it lies above -{MIN_DROP:g}, else "
    "neither. "
    "Supported / not supported by a majority of the series, else inconclusive."
)


def gates_verdict(deltas: dict[str, list[float]]) -> tuple[str, dict[str, dict]]:
    """deltas: series name -> per-run (final - initial) normalised entropy."""
    details = {}
    for name, ds in sorted(deltas.items()):
        mean, lo, hi = mean_ci(ds)
        vote = ("neither" if len(ds) < MIN_SEEDS or math.isnan(lo) else "for" if hi < -MIN_DROP else
                "against" if lo > -MIN_DROP else "neither")
        details[name] = {"delta": mean, "delta_lo": lo, "delta_hi": hi, "runs": len(ds), "vote": vote}
    return _majority({n: d["vote"] for n, d in details.items()}), details


COST_RULE = (
    "From the latest speed sweep: supported if every sla-X's fwd+bwd peak memory per sequence grows as T^s "
    f"with s <= {LINEAR_SLOPE:g} (linear), its time slope is <= {LINEAR_SLOPE:g} or at most {SLOPE_EXCESS:g} above "
    f"its base's (SLA claims to keep its base's complexity: a base that is itself superlinear on this machine, "
    f"e.g. a launch-bound fallback path, says nothing about SLA), and every base's median sla-X / X time ratio "
    f"(CUDA-graph replay where timed, else eager) is <= {SMALL_OVERHEAD:g}; not supported if some memory slope "
    f"exceeds {SUPERLINEAR_SLOPE:g}, some time slope exceeds both {SUPERLINEAR_SLOPE:g} and its base's by more "
    f"than {LARGE_SLOPE_EXCESS:g}, or some median ratio exceeds {LARGE_OVERHEAD:g}; else (or with no sweep) "
    "inconclusive."
)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def cost_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Median overhead ratio per base and the sla-X fwd+bwd slopes from a sweep's summary."""
    modes = {o["mode"] for o in summary.get("sla_overhead", [])}
    mode = "fwdbwd-graph" if "fwdbwd-graph" in modes else "fwdbwd"
    ratios: dict[str, list[float]] = defaultdict(list)
    for o in summary.get("sla_overhead", []):
        if o["mode"] == mode:
            ratios[o["base"]].append(o["ratio"])
    fwdbwd = {s["mixer"]: s for s in summary.get("slopes", []) if s["mode"] == "fwdbwd"}
    slopes = [{**s, "base_time": fwdbwd.get(m[4:], {}).get("time")} for m, s in fwdbwd.items() if m.startswith("sla-")]
    return {"mode": mode, "overhead": {b: _median(r) for b, r in sorted(ratios.items())},
            "slopes": sorted(slopes, key=lambda s: s["mixer"])}


def cost_verdict(summary: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    if summary is None:
        return INCONCLUSIVE, None
    c = cost_summary(summary)
    memory = [s["memory"] for s in c["slopes"] if s["memory"] is not None]
    time = [(s["time"], s["base_time"] if s["base_time"] is not None else math.inf)  # no base: no allowance
            for s in c["slopes"] if s["time"] is not None]
    overheads = list(c["overhead"].values())
    if not (memory or time) and not overheads:
        return INCONCLUSIVE, c
    if (any(m > SUPERLINEAR_SLOPE for m in memory) or any(o > LARGE_OVERHEAD for o in overheads)
            or any(t > SUPERLINEAR_SLOPE and t > b + LARGE_SLOPE_EXCESS for t, b in time)):
        return NOT_SUPPORTED, c
    if ((memory or time) and overheads and all(m <= LINEAR_SLOPE for m in memory)
            and all(t <= LINEAR_SLOPE or t <= b + SLOPE_EXCESS for t, b in time)
            and all(o <= SMALL_OVERHEAD for o in overheads)):
        return SUPPORTED, c
    return INCONCLUSIVE, c


# ---- analysis of records ----------------------------------------------------------------------


def _cells(records: list[RunRecord]) -> list[dict[str, Any]]:
    """Every aggregated (task, model) cell of a section (one lr per grid, so the best-lr row)."""
    return [row for rows in aggregate(records)["tasks"].values() for row in rows] if records else []


def _twin_pairs(cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any]) -> dict[str, list[tuple[dict, dict]]]:
    """base -> [(twin cell, base cell)] matched on condition(cell) and the twin's backbone."""
    index = {(c["mixer"], condition(c)): c for c in cells}
    pairs: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for c in sorted(cells, key=lambda c: (c["mixer"], str(condition(c)))):
        if c["mixer"].startswith("sla-") and (c["mixer"][4:], condition(c)) in index:
            pairs[c["mixer"][4:]].append((c, index[(c["mixer"][4:], condition(c))]))
    return dict(pairs)


def _noise_condition(c: dict[str, Any]) -> tuple[float, int]:
    return (c["task_params"].get("noise", 0.0), c["task_params"]["seq_len"])


def _d_model_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["d_model"]


def _heads_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["n_heads"]


def _score(r: dict[str, Any]) -> float | None:
    return 0.0 if r["status"] == "diverged" else r["metrics"]["test_acc"] if r["status"] == "ok" else None


def paired_gains(records: list[RunRecord]) -> dict[str, list[tuple[int, float]]]:
    """base -> [(H, twin acc - base acc)] for every seed and H where both ran (same task too)."""
    acc = {}
    for r in records:
        spec, score = RunSpec.from_dict(r["spec"]), _score(r)
        if score is not None:
            p = dict(spec.model.params)
            acc[(spec.model.name, p["n_heads"], spec.task.label(), spec.seed)] = score
    gains: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (mixer, h, task, seed), score in sorted(acc.items()):
        if mixer.startswith("sla-") and (mixer[4:], h, task, seed) in acc:
            gains[mixer[4:]].append((h, score - acc[(mixer[4:], h, task, seed)]))
    return dict(gains)


GATE_KEY = re.compile(r"layer(\d+)/(k?gate)_(entropy|max)$")


def gate_series(records: list[RunRecord]) -> dict[tuple[str, int, int, str], list[list[dict[str, float]]]]:
    """(mixer, heads, layer, 'q' | 'k') -> per run, its curve [{step, entropy, max}] (SLA runs that are ok).
    Heads are kept apart: the max gate of H heads starts near 1/H."""
    out: dict[tuple[str, int, int, str], list[list[dict[str, float]]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["key"]):
        if r["status"] != "ok":
            continue
        runs: dict[tuple[int, str], list[dict[str, float]]] = defaultdict(list)
        for point in r["metrics"].get("curve", []):
            entries: dict[tuple[int, str], dict[str, float]] = {}
            for k, v in point.items():
                m = GATE_KEY.match(k)
                if m:
                    entries.setdefault((int(m[1]), "k" if m[2] == "kgate" else "q"), {"step": point["step"]})[m[3]] = v
            for key, e in entries.items():
                runs[key].append(e)
        heads = dict(RunSpec.from_dict(r["spec"]).model.params)["n_heads"]
        for (layer, gate), curve in runs.items():
            out[(r["spec"]["model"]["name"], heads, layer, gate)].append(curve)
    return dict(sorted(out.items()))


# ---- formatting and plots ---------------------------------------------------------------------


def _f(x: float | None, lo: float | None = None, hi: float | None = None, fmt: str = ".3f") -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:{fmt}}" + ("" if lo is None or hi is None or math.isnan(lo) else f" [{lo:{fmt}}, {hi:{fmt}}]")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _accuracy_table(cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any], label: Callable[[Any], str]) -> list[str]:
    conds = sorted({condition(c) for c in cells})
    mixers = sorted({c["mixer"] for c in cells}, key=lambda m: (m.removeprefix("sla-"), m))
    index = {(c["mixer"], condition(c)): c for c in cells}
    rows = [[m] + [_pct(index[(m, k)]["acc"], index[(m, k)]["acc_lo"], index[(m, k)]["acc_hi"])
                   + f" ({index[(m, k)]['solved']}/{index[(m, k)]['seeds']} solved)"
                   if (m, k) in index else "-" for k in conds] for m in mixers]
    return _table(["mixer"] + [label(k) for k in conds], rows)


def _plot_lines(ax: Any, cells: list[dict[str, Any]], x_of: Callable[[dict[str, Any]], Any], select: Callable[[dict[str, Any]], bool], xlabel: str, log2: bool = False) -> None:
    for mixer in sorted({c["mixer"] for c in cells}):
        pts = sorted((x_of(c), c) for c in cells if c["mixer"] == mixer and select(c))
        if pts:
            ax.errorbar([x for x, _ in pts], [100 * c["acc"] for _, c in pts],
                        yerr=yerr([c for _, c in pts]),
                        marker="o", capsize=3, label=mixer, linestyle="--" if mixer.startswith("sla-") else "-")
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


def _votes_table(details: dict[str, dict]) -> list[str]:
    return _table(["base", "SLA twin mean acc %", "base mean acc %", "twin wins", "twin losses", "conditions", "vote"],
                  [[b, _pct(d["twin_mean"]), _pct(d["base_mean"]), str(d["wins"]), str(d["losses"]),
                    str(d["conditions"]), d["vote"]] for b, d in details.items()])


# ---- sections ---------------------------------------------------------------------------------


def noise_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = _cells(records)
    verdict, details = accuracy_verdict(_twin_pairs(cells, _noise_condition))
    lines = ["## 1. Retrieval under noise (claim 1)", "",
             ("Needle in a haystack whose filler tokens are replaced, with probability `noise`, by uniform tokens "
             "(keys and values included). Test accuracy % (micro, over scored value tokens), mean [95% bootstrap CI] and seeds solved "
             "(test accuracy >= the grid's solve_at), per (noise, seq_len):"), ""]
    lines += _accuracy_table(cells, _noise_condition, lambda k: f"noise {k[0]:g}, T {k[1]}") + [""]
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
        _plot_lines(axes[0], cells, lambda c: c["task_params"].get("noise", 0.0),
                    lambda c: c["task_params"]["seq_len"] == t_main, "noise")
        axes[0].set_title(f"needle, seq_len {t_main}")
        _plot_lines(axes[1], cells, lambda c: c["task_params"]["seq_len"],
                    lambda c: c["task_params"].get("noise", 0.0) == n_main, "seq_len", log2=True)
        axes[1].set_title(f"needle, noise {n_main:g}")
        axes[1].legend(fontsize=7)
        lines += [f"![noise]({_save(fig, out_dir / f'{stem}-noise.png')})", ""]
    lines += _verdict_lines(verdict, ACCURACY_RULE + " Conditions: every (noise, seq_len) pair.",
                            _votes_table(details) + [""])
    return lines, verdict


def mqar_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = _cells(records)
    verdict, details = accuracy_verdict(_twin_pairs(cells, _d_model_condition))
    lines = ["## 2. MQAR recall vs d_model and state size (claim 1 without noise)", "",
             "Multi-query associative recall; test accuracy %, mean [95% bootstrap CI] and seeds solved, per d_model:", ""]
    lines += _accuracy_table(cells, _d_model_condition, lambda d: f"d_model {d}") + [""]
    sizes = sorted({(c["mixer"], c["model_params"]["d_model"], c["state_size"]) for c in cells if c["state_size"]})
    if sizes:
        lines += ["State size (elements of recurrent state per sequence, all layers):", ""]
        lines += _table(["mixer", "d_model", "state size"], [[m, str(d), str(s)] for m, d, s in sizes]) + [""]
    if cells:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_lines(axes[0], cells, _d_model_condition, lambda c: True, "d_model", log2=True)
        _plot_lines(axes[1], cells, lambda c: c["state_size"] or 0, lambda c: bool(c["state_size"]),
                    "state size (elements)")
        axes[1].set_xscale("log")
        axes[1].legend(fontsize=7)
        lines += [f"![mqar]({_save(fig, out_dir / f'{stem}-mqar.png')})", ""]
    lines += _verdict_lines(verdict, ACCURACY_RULE + " Conditions: every d_model.", _votes_table(details) + [""])
    return lines, verdict


def heads_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    cells = _cells(records)
    gains = paired_gains(records)
    verdict, details = heads_verdict(gains)
    lines = ["## 3. Gain vs number of heads (claim 2)", "",
             "MQAR at fixed d_model; test accuracy %, mean [95% bootstrap CI] and seeds solved, per heads H:", ""]
    lines += _accuracy_table(cells, _heads_condition, lambda h: f"H {h}") + [""]
    hs = sorted({h for pts in gains.values() for h, _ in pts})
    rows = []
    for base, pts in gains.items():
        cols = []
        for h in hs:
            g = [x for hh, x in pts if hh == h]
            cols.append(_pct(*mean_ci(g)) + f" (n={len(g)})" if g else "-")
        rows.append([base] + cols)
    lines += ["SLA gain (twin - base, pp, paired by seed):", ""] + _table(["base"] + [f"H {h}" for h in hs], rows) + [""]
    if gains:
        fig, ax = plt.subplots(figsize=(5, 4))
        for base, pts in gains.items():
            per_h = [(h, *mean_ci([x for hh, x in pts if hh == h])) for h in hs if any(hh == h for hh, _ in pts)]
            ax.errorbar([h for h, *_ in per_h], [100 * m for _, m, _, _ in per_h],
                        yerr=[[0 if math.isnan(lo) else 100 * (m - lo) for _, m, lo, _ in per_h],
                              [0 if math.isnan(hi) else 100 * (hi - m) for _, m, _, hi in per_h]], marker="o", capsize=3,
                        label=f"sla-{base} - {base}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("heads H")
        ax.set_ylabel("accuracy gain (pp)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        lines += [f"![heads]({_save(fig, out_dir / f'{stem}-heads.png')})", ""]
    votes = _table(["base", "slope (gain per doubling of H)", "points", "vote"],
                   [[b, _f(d["slope"], d["slope"] - d["slope_ci"], d["slope"] + d["slope_ci"]), str(d["points"]), d["vote"]] for b, d in details.items()])
    lines += _verdict_lines(verdict, HEADS_RULE, votes + [""])
    return lines, verdict


def gates_section(records: list[RunRecord], out_dir: Path, stem: str) -> tuple[list[str], str]:
    series = gate_series(records)
    deltas = {f"{m} H{h} layer {layer} {g}-gate": [c[-1]["entropy"] - c[0]["entropy"] for c in curves]
              for (m, h, layer, g), curves in series.items()}
    verdict, details = gates_verdict(deltas)
    lines = ["## 4. Gate dynamics (claim 3)", "",
             ("From the curves of every SLA run above (logged at each evaluation): normalised gate entropy "
             "(entropy / log H; 1 = uniform, 0 = one-hot) and mean largest gate. Initial = first evaluation, "
             "final = last; mean [95% bootstrap CI] over runs."), ""]
    rows = []
    for (m, h, layer, g), curves in series.items():
        d = details[f"{m} H{h} layer {layer} {g}-gate"]
        rows.append([m, str(h), str(layer), g, str(d["runs"]), _f(*mean_ci([c[0]["entropy"] for c in curves])),
                     _f(*mean_ci([c[-1]["entropy"] for c in curves])), _f(d["delta"], d["delta_lo"], d["delta_hi"]),
                     _f(*mean_ci([c[0]["max"] for c in curves])), _f(*mean_ci([c[-1]["max"] for c in curves])),
                     d["vote"]])
    lines += _table(["mixer", "H", "layer", "gate", "runs", "initial entropy", "final entropy", "change",
                     "initial max gate", "final max gate", "vote"], rows) + [""]
    if series:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for (m, h, layer, g), curves in series.items():
            for ax, what in zip(axes, ("entropy", "max")):
                by_step: dict[int, list[float]] = defaultdict(list)
                for c in curves:
                    for p in c:
                        by_step[p["step"]].append(p[what])
                steps = sorted(by_step)
                ax.plot(steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], label=f"{m} H{h} L{layer} {g}",
                        linestyle="-" if g == "q" else "--")
        axes[0].set_ylabel("gate entropy / log H")
        axes[1].set_ylabel("mean max gate")
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=6)
        lines += [f"![gates]({_save(fig, out_dir / f'{stem}-gates.png')})", ""]
    lines += _verdict_lines(verdict, GATES_RULE, [])
    return lines, verdict


def latest_sweep(speed_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The speed sweep JSON (from `slabench sweep`) with the latest timestamp, or None."""
    found = []
    for path in sorted(Path(speed_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("summary"), dict) and "sla_overhead" in data["summary"]:
            found.append((str(data.get("timestamp", "")), path.name, path, data))
    if not found:
        return None
    _, _, path, data = max(found, key=lambda f: f[:2])
    return path, data


def cost_section(records: list[RunRecord], speed_dir: Path) -> tuple[list[str], str]:
    lines = ["## 5. Cost: time and memory (claim 4)", ""]
    sweep = latest_sweep(speed_dir)
    verdict, c = cost_verdict(sweep[1]["summary"] if sweep else None)
    if sweep is None:
        lines += [(f"No speed sweep found: `{speed_dir}/*.json` is missing. Produce it with `slabench sweep` "
                  "(on a GPU: `slabench sweep --device cuda --out leaderboards/speed`), then rerun "
                  "`slabench report sla --from-records`."), ""]
    else:
        path, data = sweep
        m = data.get("machine", {})
        lines += [(f"From `{path.name}` (sweep of {data.get('timestamp', '?')}, device "
                  f"{m.get('device_name', m.get('device', '?'))}); time ratios from the {c['mode']} timings."), ""]
        lines += _table(["base", "median sla-X / X time"], [[b, _f(r, fmt=".2f")] for b, r in c["overhead"].items()]) + [""]
        lines += _table(["mixer", "time slope vs T", "base's time slope", "memory slope vs T"],
                        [[s["mixer"], _f(s["time"], fmt=".2f"), _f(s["base_time"], fmt=".2f"), _f(s["memory"], fmt=".2f")]
                         for s in c["slopes"]]) + [""]
    # Beside the sweep: the training runs' own step time and peak memory, per base / twin pair.
    by_mixer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok":
            by_mixer[r["spec"]["model"]["name"]].append(r)
    pairs = sorted(m[4:] for m in by_mixer if m.startswith("sla-") and m[4:] in by_mixer)
    if pairs:
        def stat(mixer: str, key: str) -> float:
            return stats.mean([r["timings"][key] for r in by_mixer[mixer]])

        lines += [("Training runs of the sections above (mean over all their runs; packed several per device, so "
                  "indicative only):"), ""]
        lines += _table(["base", "step ms", "sla step ms", "ratio", "peak MiB", "sla peak MiB"],
                        [[b, _f(stat(b, "step_ms"), fmt=".2f"), _f(stat(f"sla-{b}", "step_ms"), fmt=".2f"),
                          _f(stat(f"sla-{b}", "step_ms") / stat(b, "step_ms"), fmt=".2f"),
                          _f(stat(b, "peak_memory_bytes") / 2**20, fmt=".0f"),
                          _f(stat(f"sla-{b}", "peak_memory_bytes") / 2**20, fmt=".0f")] for b in pairs]) + [""]
    lines += _verdict_lines(verdict, COST_RULE, [])
    return lines, verdict


# ---- the report -------------------------------------------------------------------------------


BIMODAL_HIGH, BIMODAL_LOW = 0.9, 0.1  # a cell whose seeds include both: learned by some, at chance in others


def _runs_lines(records: dict[str, list[dict[str, Any]]], every: list[dict[str, Any]]) -> list[str]:
    """Where the runs ran, which failed and why, and how many cells split between learned and
    chance. records: section -> its records; every: all of them."""
    if not every:
        return []
    lines = [f"Machines: {', '.join(record_machines(every)) or '-'}."]
    scores: dict[tuple, list[float]] = defaultdict(list)
    for r in every:
        if (score := _score(r)) is not None:
            spec = RunSpec.from_dict(r["spec"])
            scores[(spec.task.label(), spec.model.label())].append(score)
    split = sum(1 for v in scores.values() if max(v) >= BIMODAL_HIGH and min(v) <= BIMODAL_LOW)
    lines[0] += (f" {split} of {len(scores)} (task, model) cells have seeds both at >= {BIMODAL_HIGH:.0%} and at "
                 f"<= {BIMODAL_LOW:.0%} test accuracy: a run either learns the task or stays near chance, so cells are "
                 "summarised by seeds solved, and deciding between them takes more seeds.")
    failed = sorted((s, RunSpec.from_dict(r["spec"]).model.label(), r["seed"], (r["error"] or "").splitlines()[0][:100])
                    for s in GRID_SECTIONS for r in records.get(s, []) if r["status"] == "failed")
    if failed:
        lines += ["", "Failed runs (left out of every figure):", ""]
        lines += _table(["section", "model", "seed", "error"], [[s, m, str(seed), e] for s, m, seed, e in failed])
    return lines + [""]


def write_report(records: dict[str, list[dict[str, Any]]], scale: str, report_path: Path, speed_dir: Path) -> dict[str, str]:
    """records: section -> its records. Writes the Markdown and PNGs next to it; returns the
    verdict per section."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    out_dir, stem = report_path.parent, report_path.stem
    every = [r for s in GRID_SECTIONS for r in records.get(s, [])]
    parts = {
        "noise": noise_section(records.get("noise", []), out_dir, stem),
        "mqar": mqar_section(records.get("mqar", []), out_dir, stem),
        "heads": heads_section(records.get("heads", []), out_dir, stem),
        "gates": gates_section(every, out_dir, stem),
        "cost": cost_section(every, speed_dir),
    }
    counts = ", ".join(f"{s} {len(records.get(s, []))}" for s in GRID_SECTIONS)
    failed = sum(r["status"] == "failed" for r in every)
    head = ["# SLA mechanism report", "",
            (f"Generated by `slabench report sla --scale {scale}` from run records ({counts}; {failed} failed) and the "
            "latest speed sweep; do not edit by hand. Grids: `slabench/presets/report-<section>-"
            f"{scale}.toml`. Softmax Linear Attention, arXiv 2602.01744."), "",
            "| section | claim | verdict |", "|---|---|---|",
            f"| 1. noise | better retrieval under noise for RetNet, GLA, GDN | {parts['noise'][1]} |",
            f"| 2. mqar | (claim 1 without noise) better MQAR recall at equal width | {parts['mqar'][1]} |",
            f"| 3. heads | gains grow with the number of heads | {parts['heads'][1]} |",
            f"| 4. gates | head gates sharpen towards one-hot during training | {parts['gates'][1]} |",
            f"| 5. cost | linear time and memory, small overhead | {parts['cost'][1]} |", ""]
    head += _runs_lines(records, every)
    if scale == "tiny":
        head += [("Scale `tiny`: CPU test sizes (tens of steps); the numbers exercise the pipeline and say nothing "
                 "about SLA."), ""]
    body = [line for s in parts.values() for line in s[0]]
    report_path.write_text("\n".join(head + body).rstrip("\n") + "\n")
    return {s: p[1] for s, p in parts.items()}
