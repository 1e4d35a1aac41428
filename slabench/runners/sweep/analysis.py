"""What a sweep's rows say: SLA overhead ratios, where sla-gla overtakes attention, and how time
and memory scale with T. Pure functions of the rows, so a saved sweep JSON is re-analysed
without a GPU."""

from __future__ import annotations

import math
from typing import Any

SweepShape = tuple[int, int, int, int, str]  # B, T, H, D and 'length' or 'shape' (which part of the sweep)


def paths_label(paths: dict[str, str] | None) -> str:
    """'op: path, ...' of a row's or the machine's kernel paths, sorted by op."""
    return ", ".join(f"{op}: {p}" for op, p in sorted((paths or {}).items()))


def same_path_run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The largest set of rows (most points, then the longest T) that ran the same kernel paths.

    Dispatch changes kernels with T (the project's short-sequence gla kernel up to T 1024, fla's
    chunk kernels beyond), and the two keep different buffers: a slope fitted across the switch
    would measure the switch, not how one kernel scales.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(paths_label(r.get("kernel_paths")), []).append(r)
    return max(groups.values(), key=lambda g: (len(g), max(r["seq_len"] for r in g)), default=[])


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two usable points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y is not None and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def crossover(lengths: list[int], fast_ms: list[float], slow_ms: list[float]) -> dict[str, Any]:
    """Where `fast` (e.g. sla-gla) becomes and stays faster than `slow` (attention).

    from_T: the smallest measured length from which fast < slow at every larger measured length;
    estimate: log-log interpolation of the time ratio between that length and the one below
    (None when fast is faster everywhere or nowhere).
    """
    pts = sorted((t, f / s) for t, f, s in zip(lengths, fast_ms, slow_ms) if f and s)
    if not pts:
        return {"from_T": None, "estimate": None, "ratios": {}}
    i = len(pts)
    while i > 0 and pts[i - 1][1] < 1:
        i -= 1
    ratios = {t: r for t, r in pts}
    if i == len(pts):
        return {"from_T": None, "estimate": None, "ratios": ratios}
    if i == 0:
        return {"from_T": pts[0][0], "estimate": None, "ratios": ratios}
    (t1, r1), (t2, r2) = pts[i - 1], pts[i]
    lt = math.log(t1) + (0 - math.log(r1)) * (math.log(t2) - math.log(t1)) / (math.log(r2) - math.log(r1))
    return {"from_T": t2, "estimate": math.exp(lt), "ratios": ratios}


def ok_rows(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())]


def sweep_shapes(rows: list[dict[str, Any]]) -> list[SweepShape]:
    """Every shape the rows hold, in the order first timed."""
    return list(dict.fromkeys((r["batch"], r["seq_len"], r["heads"], r["head_dim"], r["sweep"]) for r in rows))


def median_ms(rows: list[dict[str, Any]], mixer: str, mode: str, shape: SweepShape) -> float | None:
    """The median time of `mixer` in `mode` at the shape's B, T, H, D (the first such row that ran)."""
    found = ok_rows(rows, mixer=mixer, mode=mode, batch=shape[0], seq_len=shape[1], heads=shape[2], head_dim=shape[3])
    return found[0]["median_ms"] if found else None


def _norm(mixer: str, options: dict[str, Any]) -> str | None:
    """An arm's output norm; None for a mixer without one, or one this install lacks (a plugin's
    saved sweep is still read)."""
    from slabench.errors import SlabenchError
    from slabench.models.arms import option_default

    try:
        return options.get("output_norm", option_default(mixer, "output_norm"))
    except SlabenchError:
        return None


def twin_pairs(names: list[str]) -> list[tuple[str, str, bool]]:
    """(sla-X arm, X arm, same output norm) for the pairs whose time ratio is an SLA overhead: each
    registered twin over its base, which can differ in the norm as well as the gate (sla-X
    normalises over all heads, most X per head), and each swept arm of the twin with the softmax
    gate over a swept arm of the base at the same norm (`sla-gla/head-norm` over `gla`): the
    gate's cost alone."""
    from slabench.models.arms import split_arm

    arms = {n: split_arm(n) for n in names}
    pairs = []
    for b, (mb, ob) in arms.items():  # in the bases' order, as the sweep's tables list them
        for a, (ma, oa) in arms.items():
            if ma != f"sla-{mb}" or "gate_kind" in oa or "gate_kind" in ob:
                continue
            norm = _norm(ma, oa)
            same = norm is not None and norm == _norm(mb, ob)
            if (a, b) == (ma, mb) or same:
                pairs.append((a, b, same))
    return pairs


def overhead_pair(o: dict[str, Any]) -> tuple[str, str]:
    """(twin arm, base arm) an overhead row divides; a sweep saved before arms were swept names
    only the base."""
    return o.get("twin", f"sla-{o['base']}"), o.get("baseline", o["base"])


def registered_pair(o: dict[str, Any]) -> bool:
    """Whether an overhead row is sla-X over X as registered (not an arm of either)."""
    return overhead_pair(o) == (f"sla-{o['base']}", o["base"])


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """{"sla_overhead", "crossover_sla_gla_vs_attention", "slopes"} of a sweep's mixer rows."""
    from slabench.models.arms import split_arm

    rows = result["rows"]
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    shapes = sweep_shapes(rows)

    def ms(mixer, mode, shape):
        return median_ms(rows, mixer, mode, shape)

    overhead = []  # base: X's mixer; twin and baseline: the two arms divided
    for twin, baseline, same_norm in twin_pairs(mixers):
        for mode in modes:
            for shape in shapes:
                a, b = ms(twin, mode, shape), ms(baseline, mode, shape)
                if a and b:
                    overhead.append(
                        {
                            "base": split_arm(baseline)[0],  # a plugin file's name holds '/' too
                            "twin": twin,
                            "baseline": baseline,
                            "same_norm": same_norm,
                            "mode": mode,
                            "shape": list(shape[:4]),
                            "sweep": shape[4],
                            "ratio": a / b,
                        }
                    )

    length_shapes = [s for s in shapes if s[4] == "length"]
    cross = {}  # per fwd+bwd mode: eager calls carry the host's launch cost, graph replays do not
    if {"sla-gla", "attention"} <= set(mixers):
        for mode in [m for m in ("fwdbwd", "fwdbwd-graph") if m in modes]:
            cross[mode] = crossover(
                [s[1] for s in length_shapes],
                [ms("sla-gla", mode, s) for s in length_shapes],
                [ms("attention", mode, s) for s in length_shapes],
            )

    slopes = []  # per sequence: time / B and peak memory / B against T
    for name in mixers:
        for mode in modes:
            rs = same_path_run(list(ok_rows(rows, mixer=name, mode=mode, sweep="length")))
            ts = [r["seq_len"] for r in rs]
            slopes.append(
                {
                    "mixer": name,
                    "mode": mode,
                    "time": loglog_slope(ts, [r["median_ms"] / r["batch"] for r in rs]),
                    "memory": loglog_slope(
                        ts, [r["peak_mem_bytes"] / r["batch"] if r["peak_mem_bytes"] else None for r in rs]
                    ),
                    "T": [min(ts), max(ts)] if ts else None,
                    "kernel_paths": paths_label(rs[0].get("kernel_paths")) if rs else "",
                }
            )
    return {"sla_overhead": overhead, "crossover_sla_gla_vs_attention": cross, "slopes": slopes}
