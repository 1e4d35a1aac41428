"""Speed and memory sweep: every mixer, alone, over sequence lengths; and the training step.

For each mixer x shape, one mixer layer on x [B, T, d_model] (float32 residual stream, autocast
to bf16 when dtype is bf16, as in training) is timed by `slabench.runners.timing.measure`:

    fwd           forward under no_grad (inference)
    fwdbwd        forward + gradients of the input and every parameter
    fwdbwd-graph  the same captured once into a CUDA graph and replayed (CUDA only): the cost
                  without launch overhead, as inside a CUDA-graph training step

Length sweep: H = heads, D = d_model / H, and the batch holds the tokens per call constant,
B = max(1, tokens // T), unless `batch` is given: so per-call time of a linear mixer stays flat
with T while attention's grows linearly, and the largest T fits in memory. Extra shapes
(B, T, H, D) are timed as given (the acceptance shape B64 T256 H8 D16). A shape that runs out
of memory is recorded as 'oom', one that fails otherwise as 'failed', and the sweep goes on.

The training step (optional) is the standard MQAR model (2 layers, d_model 128, seq_len 256,
batch 256, MQAR's default vocabulary) through `runners.train.TrainStep`, eager and CUDA-graph;
data sampling is not timed.

`write_outputs` writes <out>/<device-slug>.md, .csv, .json and log-log plots, with SLA overhead
ratios, the sla-gla vs attention crossover length, fitted scaling slopes and the issue-#7 targets.
"""

from __future__ import annotations

import csv
import gc
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from slabench import kernels
from slabench.params import require
from slabench.runners import timing

TARGET_SHAPE = (64, 256, 8, 16)  # B, T, H, D of the mixer-level acceptance point
MODES = ("fwd", "fwdbwd", "fwdbwd-graph")
MODE_TITLES = {"fwd": "fwd", "fwdbwd": "fwd+bwd", "fwdbwd-graph": "fwd+bwd, CUDA graph replay"}
MIB = 2**20


@dataclass(frozen=True)
class Shape:
    batch: int
    seq_len: int
    heads: int
    head_dim: int
    sweep: str = "length"  # 'length' (part of the length sweep) or 'shape' (given explicitly)

    @property
    def d_model(self) -> int:
        return self.heads * self.head_dim

    @property
    def label(self) -> str:
        return f"B{self.batch} T{self.seq_len} H{self.heads} D{self.head_dim}"


@dataclass(frozen=True)
class TrainStepShape:
    """The model and batch of the training-step timing (the standard MQAR model by default)."""

    batch: int = 256
    seq_len: int = 256
    d_model: int = 128
    n_layers: int = 2
    vocab_size: int = 8192
    num_kv_pairs: int = 16


@dataclass(frozen=True)
class SweepConfig:
    mixers: tuple[str, ...]
    device: str
    dtype: str  # 'bf16' or 'fp32'
    seq_lens: tuple[int, ...]
    tokens: int  # tokens per call of the length sweep, unless batch is set
    batch: int | None
    d_model: int
    heads: int
    shapes: tuple[tuple[int, int, int, int], ...] = ()  # extra (B, T, H, D)
    modes: tuple[str, ...] = ("fwd", "fwdbwd")  # 'fwdbwd-graph' too by default on CUDA
    train_step: bool = False
    train_shape: TrainStepShape = field(default_factory=TrainStepShape)
    warmup: int = 3
    repeats: int | None = None  # None: as many as fit in ~0.3 s (10 to 100)

    def __post_init__(self) -> None:
        from slabench.models import MIXERS

        for name in self.mixers:
            MIXERS.get(name)  # unknown names list the known ones
        require(self.dtype in ("bf16", "fp32"), "--dtype", f"{self.dtype!r} is not allowed; choose one of bf16, fp32")
        for m in self.modes:
            require(m in MODES, "--mode", f"{m!r} is not allowed; choose one of fwd, fwdbwd, both")
        require("fwdbwd-graph" not in self.modes or torch.device(self.device).type == "cuda", "--cuda-graph",
                "CUDA-graph timing needs a CUDA device")
        require(all(t >= 2 for t in self.seq_lens), "--seq-lens", "every length must be >= 2")
        require(self.tokens >= 1, "--tokens", f"{self.tokens} must be >= 1")
        require(self.batch is None or self.batch >= 1, "--batch", f"{self.batch} must be >= 1")
        require(self.heads >= 1 and self.d_model % self.heads == 0, "--heads",
                f"d_model={self.d_model} must be a positive multiple of heads={self.heads}")
        for s in self.shapes:
            require(len(s) == 4 and min(s) >= 1, "--shape", f"{s} must be four positive ints B,T,H,D")
        require(self.repeats is None or self.repeats >= 1, "--repeats", f"{self.repeats} must be >= 1")

    def shape_list(self) -> list[Shape]:
        head_dim = self.d_model // self.heads
        out = [Shape(self.batch or max(1, self.tokens // t), t, self.heads, head_dim) for t in sorted(self.seq_lens)]
        return [Shape(*s, sweep="shape") for s in self.shapes] + out


def default_config(device: str, quick: bool = False, **overrides: Any) -> SweepConfig:
    """Defaults per device: GPU lengths 256..65536 at 65536 tokens per call; CPU 64..256 at 2048."""
    from slabench.models import MIXERS

    gpu = torch.device(device).type == "cuda"
    if gpu:
        seq_lens, tokens = ((256, 1024, 4096) if quick else (256, 1024, 4096, 16384, 65536)), 65536
    else:
        seq_lens, tokens = ((64, 128) if quick else (64, 128, 256)), 2048
    base: dict[str, Any] = {
        "mixers": tuple(MIXERS.names()), "device": device, "dtype": "bf16" if gpu else "fp32",
        "seq_lens": seq_lens, "tokens": tokens, "batch": None, "d_model": 128, "heads": 8,
        "train_shape": TrainStepShape() if gpu else TrainStepShape(batch=16, seq_len=64, vocab_size=64, num_kv_pairs=4),
        "modes": MODES if gpu else MODES[:2],
    }
    if quick:
        base.update(warmup=2, repeats=5)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return SweepConfig(**base)


# --- timing one case ----------------------------------------------------------------------


def _autocast(device: torch.device, dtype: str):
    # No weight-cast cache: it is unsafe under CUDA-graph capture, and a mixer uses each weight
    # once per forward, so eager calls lose nothing by it.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16", cache_enabled=False)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def mixer_fns(name: str, shape: Shape, device: torch.device, dtype: str) -> dict[str, Callable[[], Any]]:
    """{'fwd', 'fwdbwd'}: no-argument calls of one `name` layer on x [B, T, H*D] (dispatch
    probes already run); what `time_mixers` times and `runners.profile` profiles."""
    from slabench.models import build_mixer

    torch.manual_seed(0)
    mixer = build_mixer(name, shape.d_model, shape.heads).to(device)
    inputs = [torch.randn(shape.batch, shape.seq_len, shape.d_model, device=device, requires_grad=True),
              *mixer.parameters()]  # x [B, T, d_model] first

    def fwd():
        with torch.no_grad(), _autocast(device, dtype):
            return mixer(inputs[0])  # [B, T, d_model]

    with _autocast(device, dtype):
        dy = torch.randn_like(mixer(inputs[0]).detach())  # runs the dispatch probes, untimed

    def fwdbwd():
        with _autocast(device, dtype):
            y = mixer(inputs[0])
        return torch.autograd.grad(y, inputs, dy, allow_unused=True)

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def _timed(fn_factory: Callable[[], Callable[[], Any]], device: torch.device, cfg: SweepConfig,
           warmup: int | None = None, memory: bool = True) -> dict[str, Any]:
    """Status, measurement and kernel paths of one case; OOM and other failures become rows, not exceptions."""
    error = None
    kernels.reset_paths_used()
    try:
        m = timing.measure(fn_factory(), device, warmup=warmup or cfg.warmup, repeats=cfg.repeats,
                           memory=memory)
        out = {"status": "ok", "error": None, **m.to_dict()}
    except Exception as e:  # noqa: BLE001  (record and go on; a traceback would keep the tensors alive)
        error = ("oom" if _is_oom(e) else "failed", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    if error is not None:
        _free(device)
        out = {"status": error[0], "error": error[1], "median_ms": None, "p20_ms": None, "p80_ms": None,
               "repeats": 0, "peak_mem_bytes": None}
    out["kernel_paths"] = kernels.paths_used()  # dispatch picks per shape: rows can differ
    return out


def time_mixers(cfg: SweepConfig, on_case: Callable[[str], None] | None = None,
                on_shape_done: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """One row per mixer x shape x mode. Shapes outermost, so every mixer at a shape is timed
    close together in time (same clocks and temperature) and ratios between mixers are fair;
    explicit shapes first, then lengths ascending. on_shape_done(rows so far) after each shape."""
    device = torch.device(cfg.device)
    rows = []
    for shape in cfg.shape_list():
        for name in cfg.mixers:
            fns: dict[str, Callable[[], Any]] = {}
            for mode in cfg.modes:
                if on_case:
                    on_case(f"{name} {mode} {shape.label}")

                def factory(mode=mode, name=name, shape=shape, fns=fns):
                    if not fns:
                        fns.update(mixer_fns(name, shape, device, cfg.dtype))
                    if mode == "fwdbwd-graph":
                        return timing.cuda_graph(fns["fwdbwd"], device)
                    return fns[mode]

                # A graph's memory is its private pool, allocated at capture: no per-call peak.
                r = _timed(factory, device, cfg, memory=mode != "fwdbwd-graph")
                tokens = shape.batch * shape.seq_len
                rows.append({"kind": "mixer", "mixer": name, "mode": mode, **asdict(shape), "d_model": shape.d_model,
                             **r, "tokens_per_s": 1e3 * tokens / r["median_ms"] if r["median_ms"] else None})
                if r["status"] != "ok":
                    fns.clear()
            fns.clear()
            _free(device)
        if on_shape_done:
            on_shape_done(rows)
    return rows


def time_train_steps(cfg: SweepConfig, on_case: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per mixer x path ('eager', and 'cuda-graph' on CUDA): the whole optimizer step
    (forward, loss, backward, clipping, AdamW) of the standard MQAR model on pre-drawn batches."""
    from slabench.config import TrainSpec
    from slabench.models import build_model
    from slabench.runners.train import TrainStep, make_optimizer
    from slabench.tasks import build_task

    device = torch.device(cfg.device)
    ts = cfg.train_shape
    task = build_task("mqar", vocab_size=ts.vocab_size, seq_len=ts.seq_len, num_kv_pairs=ts.num_kv_pairs)
    gen = torch.Generator(device=device).manual_seed(0)
    batches = [task.sample(ts.batch, gen, device) for _ in range(4)]
    train_cfg = TrainSpec(batch_size=ts.batch, dtype="bfloat16" if cfg.dtype == "bf16" else "float32")
    autocast = torch.bfloat16 if (cfg.dtype == "bf16" and device.type == "cuda") else None
    paths = ("eager", "cuda-graph") if device.type == "cuda" else ("eager",)
    rows = []
    for name in cfg.mixers:
        for path in paths:
            if on_case:
                on_case(f"train step {name} {path}")
            holder: dict[str, Any] = {}

            def factory(name=name, path=path, holder=holder):
                torch.manual_seed(0)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                model = build_model(name, vocab_size=ts.vocab_size, d_model=ts.d_model, n_layers=ts.n_layers,
                                    n_heads=cfg.heads).to(device)
                step = TrainStep(model, make_optimizer(model, train_cfg, device, capturable=path == "cuda-graph"),
                                 train_cfg, device, autocast, path)
                holder["step"] = step
                calls = iter(range(10**9))

                def run():
                    b = batches[next(calls) % len(batches)]
                    return step(b.inputs, b.labels)

                return run

            # Warm-up covers the graph path's eager steps and its capture, so only replays are timed.
            r = _timed(factory, device, cfg, warmup=max(cfg.warmup, TrainStep.GRAPH_WARMUP + 2), memory=False)
            step = holder.get("step")
            peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" and r["status"] == "ok" else None
            tokens = ts.batch * ts.seq_len
            rows.append({"kind": "train-step", "mixer": name, "mode": step.path if step else path, "requested": path,
                         "fallback": step.fallback if step else None, **asdict(ts), "heads": cfg.heads, **r,
                         "peak_mem_bytes": peak,
                         "tokens_per_s": 1e3 * tokens / r["median_ms"] if r["median_ms"] else None})
            holder.clear()
            _free(device)
    return rows


def run_sweep(cfg: SweepConfig, on_case: Callable[[str], None] | None = None,
              on_partial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The sweep's result (machine, config, rows, train_steps, summary). on_partial(result so
    far) after each shape and at the end: a sweep cut short still leaves its finished shapes."""

    def result(rows, train_rows):
        used: dict[str, set[str]] = {}  # every path any case ran (each case resets dispatch's record)
        for r in rows + train_rows:
            for op, names in (r.get("kernel_paths") or {}).items():
                used.setdefault(op, set()).update(names.split(","))
        out = {
            "schema": 1,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {**timing.machine(cfg.device),
                        "kernel_paths": {op: ",".join(sorted(n)) for op, n in sorted(used.items())}},
            "config": {**asdict(cfg), "shapes": [list(s) for s in cfg.shapes]},
            "rows": rows,
            "train_steps": train_rows,
        }
        out["summary"] = summarise(out)
        return out

    if torch.device(cfg.device).type == "cuda":
        torch.cuda.set_device(torch.device(cfg.device).index or 0)  # events and streams use the current device
    partial = (lambda rows: on_partial(result(rows, []))) if on_partial else None
    rows = time_mixers(cfg, on_case, partial)
    final = result(rows, time_train_steps(cfg, on_case) if cfg.train_step else [])
    if on_partial:
        on_partial(final)
    return final


# --- analysis -------------------------------------------------------------------------------


def _paths_label(paths: dict[str, str] | None) -> str:
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
        groups.setdefault(_paths_label(r.get("kernel_paths")), []).append(r)
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


def _ok(rows, **match) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    rows, train_rows = result["rows"], result["train_steps"]
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    shapes = list(dict.fromkeys((r["batch"], r["seq_len"], r["heads"], r["head_dim"], r["sweep"]) for r in rows))

    def ms(mixer, mode, shape):
        found = _ok(rows, mixer=mixer, mode=mode, batch=shape[0], seq_len=shape[1], heads=shape[2], head_dim=shape[3])
        return found[0]["median_ms"] if found else None

    overhead = []
    for base in mixers:
        if f"sla-{base}" not in mixers:
            continue
        for mode in modes:
            for shape in shapes:
                a, b = ms(f"sla-{base}", mode, shape), ms(base, mode, shape)
                if a and b:
                    overhead.append({"base": base, "mode": mode, "shape": list(shape[:4]), "sweep": shape[4],
                                     "ratio": a / b})

    length_shapes = [s for s in shapes if s[4] == "length"]
    cross = {}  # per fwd+bwd mode: eager calls carry the host's launch cost, graph replays do not
    if {"sla-gla", "attention"} <= set(mixers):
        for mode in [m for m in ("fwdbwd", "fwdbwd-graph") if m in modes]:
            cross[mode] = crossover([s[1] for s in length_shapes], [ms("sla-gla", mode, s) for s in length_shapes],
                                    [ms("attention", mode, s) for s in length_shapes])

    slopes = []  # per sequence: time / B and peak memory / B against T
    for name in mixers:
        for mode in modes:
            rs = same_path_run(list(_ok(rows, mixer=name, mode=mode, sweep="length")))
            ts = [r["seq_len"] for r in rs]
            slopes.append({
                "mixer": name, "mode": mode,
                "time": loglog_slope(ts, [r["median_ms"] / r["batch"] for r in rs]),
                "memory": loglog_slope(ts, [r["peak_mem_bytes"] / r["batch"] if r["peak_mem_bytes"] else None
                                            for r in rs]),
                "T": [min(ts), max(ts)] if ts else None,
                "kernel_paths": _paths_label(rs[0].get("kernel_paths")) if rs else "",
            })
    summary = {"sla_overhead": overhead, "crossover_sla_gla_vs_attention": cross, "slopes": slopes}
    summary["targets"] = targets(summary, ms, _ok(train_rows))
    return summary


def targets(summary: dict[str, Any], ms: Callable, train_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The speed targets (SLA cost ratios, memory slope), each with the measured value and pass/fail (None when
    not measured). Mixer-level points are given for eager calls and for CUDA-graph replays
    (launch overhead removed, as in a CUDA-graph training step) where those were timed."""
    out = []

    def add(target, value, limit, strict=False):
        out.append({"target": target, "value": value,
                    "pass": None if value is None else (value < limit if strict else value <= limit)})

    def worst(xs):
        return max(xs) if xs else None

    for mode in ("fwdbwd", "fwdbwd-graph"):
        ov = [o for o in summary["sla_overhead"] if o["mode"] == mode]
        if not ov and mode == "fwdbwd-graph":
            continue
        how = MODE_TITLES[mode]
        add(f"sla-X / X {how} <= 1.10 at T >= 4096 (worst X)",
            worst([o["ratio"] for o in ov if o["sweep"] == "length" and o["shape"][1] >= 4096]), 1.10)
        add(f"sla-X / X {how} <= 1.25 at B64 T256 H8 D16 (worst X)",
            worst([o["ratio"] for o in ov if tuple(o["shape"]) == TARGET_SHAPE]), 1.25)
        a, b = ms("sla-gla", mode, TARGET_SHAPE), ms("attention", mode, TARGET_SHAPE)
        add(f"sla-gla / SDPA {how} <= 1.5 at B64 T256 H8 D16", a / b if a and b else None, 1.5)

    paths = dict.fromkeys(r["mode"] for r in train_rows)
    for path in [*paths, "fastest path of each"] if len(paths) > 1 else paths:
        ts = {name: [r["median_ms"] for r in train_rows if r["mixer"] == name and path in (r["mode"], "fastest path of each")]
              for name in ("sla-gla", "attention")}
        a, b = min(ts["sla-gla"], default=None), min(ts["attention"], default=None)
        add(f"training step sla-gla / attention <= 1.5 ({path})", a / b if a and b else None, 1.5)

    for mode, cross in summary["crossover_sla_gla_vs_attention"].items():
        ratios = [r for t, r in cross["ratios"].items() if t >= 8192]
        add(f"sla-gla / SDPA {MODE_TITLES[mode]} < 1 at every measured T >= 8192 (worst)", worst(ratios), 1.0,
            strict=True)
    mem = [s["memory"] for s in summary["slopes"] if s["mixer"] == "sla-gla" and s["mode"] == "fwdbwd"]
    add("sla-gla fwd+bwd peak memory per sequence ~ T^s: s <= 1.1", mem[0] if mem else None, 1.1)
    return out


# --- outputs --------------------------------------------------------------------------------


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r["status"] != "ok":
        return r["status"]
    return f"{r['median_ms']:.3g} [{r['p20_ms']:.3g}, {r['p80_ms']:.3g}]"


def _mem(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r["status"] != "ok":
        return r["status"]
    return "n/a" if r["peak_mem_bytes"] is None else f"{r['peak_mem_bytes'] / MIB:.3g}"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def markdown(result: dict[str, Any]) -> str:
    m, cfg, rows, summ = result["machine"], result["config"], result["rows"], result["summary"]
    shapes = list(dict.fromkeys((r["batch"], r["seq_len"], r["heads"], r["head_dim"]) for r in rows))
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))
    paths = _paths_label(m["kernel_paths"]) or "none"
    batch_rule = (f"B = {cfg['batch']} fixed" if cfg["batch"] else
                  f"B = max(1, {cfg['tokens']} // T): tokens per call held constant")
    lines = [
        f"# Mixer speed and memory: {m['device']}",
        "",
        f"Generated by `slabench sweep` on {result['timestamp']}. Never edited by hand.",
        "",
        f"- machine: {m['device']}, driver {m['driver'] or 'n/a'}, CUDA {m['cuda'] or 'n/a'}, CPU {m['cpu']}",
        (f"- software: torch {m['torch']}, triton {m['triton']}, fla {m['fla']}, slabench {m['slabench']} "
        f"(git {str(m['git_sha'])[:10]}{' dirty' if m['git_dirty'] else ''})"),
        f"- kernel paths used: {paths}",
        (f"- one mixer layer on x [B, T, d_model], d_model = H * D; dtype {cfg['dtype']}"
        f"{' (autocast; float32 parameters and residual stream, as in training)' if cfg['dtype'] == 'bf16' else ''}"),
        f"- length sweep: H = {cfg['heads']}, D = {cfg['d_model'] // cfg['heads']}, {batch_rule}",
        ("- fwd: forward under no_grad; fwd+bwd: forward and gradients of input and all parameters; "
        "CUDA graph replay: fwd+bwd captured once and replayed (no launch overhead, as in a CUDA-graph training step)"),
        ("- each case warmed up first (compile, autotune, dispatch probes), then timed call by call from an idle "
        "device (CUDA events; perf_counter on CPU); cells: median [p20, p80] ms"),
        ("- an eager call's time includes the host launching its kernels; where eager is far above graph "
        "replay the host is the bottleneck, and eager ratios measure Python and launch cost on this CPU"),
        "- peak memory: max allocated during one call minus allocated before it (MiB); n/a on CPU",
        "",
    ]
    tg = summ["targets"]
    if any(t["value"] is not None for t in tg):
        lines += ["## Targets", "", "| target | measured | pass |", "| --- | ---: | :---: |"]
        for t in tg:
            ok = "-" if t["pass"] is None else ("yes" if t["pass"] else "**no**")
            lines.append(f"| {t['target']} | {_num(t['value'])} | {ok} |")
        lines.append("")

    def row_for(name, mode, s):
        found = [r for r in rows if r["mixer"] == name and r["mode"] == mode
                 and (r["batch"], r["seq_len"], r["heads"], r["head_dim"]) == s]
        return found[0] if found else None

    header = "| mixer | " + " | ".join(f"B{b} T{t} H{h} D{d}" for b, t, h, d in shapes) + " |"
    rule = "| --- |" + " ---: |" * len(shapes)
    for mode in ("fwdbwd", "fwdbwd-graph", "fwd"):
        if not any(r["mode"] == mode for r in rows):
            continue
        lines += [f"## {MODE_TITLES[mode]} time (ms)", "", header, rule]
        lines += [f"| {n} | " + " | ".join(_cell(row_for(n, mode, s)) for s in shapes) + " |" for n in mixers]
        lines.append("")
    for mode in ("fwdbwd", "fwd"):
        if not any(r["mode"] == mode for r in rows):
            continue
        lines += [f"## {MODE_TITLES[mode]} peak memory (MiB)", "", header, rule]
        lines += [f"| {n} | " + " | ".join(_mem(row_for(n, mode, s)) for s in shapes) + " |" for n in mixers]
        lines.append("")

    ov = summ["sla_overhead"]
    if ov:
        lines += ["## SLA overhead (sla-X time / X time)", "",
                  "| X | mode | " + " | ".join(f"B{b} T{t}" for b, t, _, _ in shapes) + " |",
                  "| --- | --- |" + " ---: |" * len(shapes)]
        for base, mode in dict.fromkeys((o["base"], o["mode"]) for o in ov):
            cells = []
            for s in shapes:
                found = [o["ratio"] for o in ov if o["base"] == base and o["mode"] == mode and tuple(o["shape"]) == s]
                cells.append(f"{found[0]:.3f}" if found else "-")
            lines.append(f"| {base} | {mode} | " + " | ".join(cells) + " |")
        lines.append("")

    for mode, cross in summ["crossover_sla_gla_vs_attention"].items():
        ratios = ", ".join(f"T={t}: {r:.2f}" for t, r in sorted(cross["ratios"].items()))
        if cross["from_T"] is None:
            verdict = "sla-gla is not faster than attention at the longest measured length"
        elif cross["estimate"] is None:
            verdict = f"sla-gla is faster than attention at every measured length (from T={cross['from_T']})"
        else:
            verdict = (f"sla-gla is faster than attention from T={cross['from_T']} on (log-log interpolated "
                       f"crossover T ~ {cross['estimate']:.0f})")
        lines += [f"## Crossover: sla-gla vs attention ({MODE_TITLES[mode]}, length sweep)", "", (f"{verdict}. "
                  f"Time ratios sla-gla / attention: {ratios}."), ""]

    lines += ["## Scaling with T (length sweep, per sequence)", "",
              ("Least-squares log-log slopes of time / B and peak memory / B against T: ~1 is linear "
              "(linear mixers, and attention's memory with SDPA's fused kernels), ~2 quadratic. Each is "
              "fitted over the longest stretch of lengths that ran the same kernels: dispatch switches "
              "kernels with T, and a fit across the switch would measure the switch."), "",
              "| mixer | mode | time slope | memory slope | T fitted | kernel paths |",
              "| --- | --- | ---: | ---: | --- | --- |"]
    lines += [f"| {s['mixer']} | {s['mode']} | {_num(s['time'], '.2f')} | {_num(s['memory'], '.2f')} | "
              f"{'-'.join(map(str, s.get('T') or [])) or '-'} | {s.get('kernel_paths') or '-'} |"
              for s in summ["slopes"]]
    lines.append("")

    tr = result["train_steps"]
    if tr:
        ts = tr[0]
        lines += ["## Training step", "",
                  (f"Standard MQAR model: {ts['n_layers']} layers, d_model {ts['d_model']}, {ts['heads']} heads, "
                  f"seq_len {ts['seq_len']}, batch {ts['batch']}, vocab {ts['vocab_size']}; forward, loss, backward, "
                  "clipping and AdamW; data sampling not timed. Peak memory: whole process (model, optimizer, graph "
                  "pool)."), "",
                  "| mixer | path | ms [p20, p80] | M tokens/s | peak MiB | note |", "| --- | --- | ---: | ---: | ---: | --- |"]
        for r in tr:
            tps = _num(r["tokens_per_s"] / 1e6 if r["tokens_per_s"] else None)
            note = r["fallback"] or (r["error"] or "")
            lines.append(f"| {r['mixer']} | {r['mode']} | {_cell(r)} | {tps} | {_mem(r)} | {note} |")
        lines.append("")
    return "\n".join(lines)


def plots(result: dict[str, Any], out_dir: Path, slug: str) -> list[Path]:
    """Log-log plots of time and of peak memory against T (length sweep), one line per mixer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["sweep"] == "length"]
    paths = []
    for what, key, scale, unit in (("time", "median_ms", 1, "ms per call"), ("memory", "peak_mem_bytes", MIB, "peak MiB")):
        modes = [m for m in MODES if any(r["mode"] == m and r["status"] == "ok" and r[key] for r in rows)]
        if not modes:
            continue  # e.g. memory on CPU
        fig, axes = plt.subplots(1, len(modes), figsize=(6.4 * len(modes), 4.4), squeeze=False)
        for ax, mode in zip(axes[0], modes):
            for name in dict.fromkeys(r["mixer"] for r in rows):
                pts = sorted((r["seq_len"], r[key] / scale) for r in rows
                             if r["mixer"] == name and r["mode"] == mode and r["status"] == "ok" and r[key])
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=name, linestyle="--" if name.startswith("sla-") else "-")
            ax.set_xscale("log", base=2)
            ax.set(yscale="log", xlabel="T (sequence length)", ylabel=unit,
                   title=f"{MODE_TITLES[mode]} {what}")
            ax.legend(fontsize=7)
        fig.suptitle(f"{result['machine']['device']}, {result['config']['dtype']}", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{slug}-{what}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


CSV_COLUMNS = ["kind", "mixer", "mode", "sweep", "batch", "seq_len", "heads", "head_dim", "d_model", "status",
               "median_ms", "p20_ms", "p80_ms", "repeats", "peak_mem_bytes", "tokens_per_s", "error"]


def write_outputs(result: dict[str, Any], out_dir: Path, slug: str | None = None) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = slug or timing.device_slug(result["config"]["device"])
    paths = {"md": out_dir / f"{slug}.md", "csv": out_dir / f"{slug}.csv", "json": out_dir / f"{slug}.json"}
    paths["json"].write_text(json.dumps(result, indent=1, default=str) + "\n")
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in result["rows"] + result["train_steps"]:
            w.writerow({**r, "sweep": r.get("sweep", "train")})
    paths["md"].write_text(markdown(result))
    for p in plots(result, out_dir, slug):
        paths[p.stem.rsplit("-", 1)[1] + "_png"] = p
    return paths
