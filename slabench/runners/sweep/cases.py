"""The timed cases of a sweep, one row each: every mixer alone at every shape and mode, and the
whole training step of the standard MQAR model. Timing is `runners.timing.measure`'s; a case that
runs out of memory or fails becomes a row with its status, and the sweep goes on."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from slabench import kernels
from slabench.runners import timing
from slabench.runners.sweep.config import Shape, SweepConfig


def _autocast(device: torch.device, dtype: str):
    # No weight-cast cache: it is unsafe under CUDA-graph capture, and a mixer uses each weight
    # once per forward, so eager calls lose nothing by it.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16", cache_enabled=False)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(e: BaseException) -> bool:
    """Whether `e` is a device or the host running out of memory (the CPU allocator's failure is a
    plain RuntimeError: "can't allocate memory")."""
    text = str(e).lower()
    oom_type = isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError))
    return oom_type or "out of memory" in text or "can't allocate memory" in text


def mixer_fns(name: str, shape: Shape, device: torch.device, dtype: str) -> dict[str, Callable[[], Any]]:
    """{'fwd', 'fwdbwd'}: no-argument calls of one `name` layer (a mixer or an arm,
    `models.arms`) on x [B, T, H*D] (dispatch probes already run); what `time_mixers` times and
    `runners.profile` profiles."""
    from slabench.models import build_mixer
    from slabench.models.arms import parse_arm

    torch.manual_seed(0)
    mixer_name, options = parse_arm(name)
    mixer = build_mixer(mixer_name, shape.d_model, shape.heads, **options).to(device)
    inputs = [
        torch.randn(shape.batch, shape.seq_len, shape.d_model, device=device, requires_grad=True),
        *mixer.parameters(),
    ]  # x [B, T, d_model] first

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


def time_case(
    fn_factory: Callable[[], Callable[[], Any]],
    device: torch.device,
    cfg: SweepConfig,
    warmup: int | None = None,
    memory: bool = True,
) -> dict[str, Any]:
    """Status, measurement and kernel paths of one case; OOM and other failures become rows, not exceptions."""
    error = None
    kernels.reset_paths_used()
    try:
        m = timing.measure(fn_factory(), device, warmup=warmup or cfg.warmup, repeats=cfg.repeats, memory=memory)
        out = {"status": "ok", "error": None, **m.to_dict()}
    except Exception as e:
        error = (
            "oom" if is_oom(e) else "failed",
            f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
        )
    if error is not None:
        _free(device)
        out = {
            "status": error[0],
            "error": error[1],
            "median_ms": None,
            "p20_ms": None,
            "p80_ms": None,
            "repeats": 0,
            "peak_mem_bytes": None,
        }
    out["kernel_paths"] = kernels.paths_used()  # dispatch picks per shape: rows can differ
    return out


def time_mixers(
    cfg: SweepConfig,
    on_case: Callable[[str], None] | None = None,
    on_shape_done: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
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
                r = time_case(factory, device, cfg, memory=mode != "fwdbwd-graph")
                tokens = shape.batch * shape.seq_len
                rows.append(
                    {
                        "kind": "mixer",
                        "mixer": name,
                        "mode": mode,
                        **asdict(shape),
                        "d_model": shape.d_model,
                        **r,
                        "tokens_per_s": 1e3 * tokens / r["median_ms"] if r["median_ms"] else None,
                    }
                )
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
    from slabench.models.arms import parse_arm
    from slabench.runners.step import TrainStep, make_optimizer
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
                mixer, options = parse_arm(name)
                model = build_model(
                    mixer,
                    vocab_size=ts.vocab_size,
                    d_model=ts.d_model,
                    n_layers=ts.n_layers,
                    n_heads=cfg.heads,
                    **options,
                ).to(device)
                step = TrainStep(
                    model,
                    make_optimizer(model, train_cfg, device, capturable=path == "cuda-graph"),
                    train_cfg,
                    device,
                    autocast,
                    path,
                )
                holder["step"] = step
                calls = iter(range(10**9))

                def run():
                    b = batches[next(calls) % len(batches)]
                    return step(b.inputs, b.labels)

                return run

            # Warm-up covers the graph path's eager steps and its capture, so only replays are timed.
            r = time_case(factory, device, cfg, warmup=max(cfg.warmup, TrainStep.GRAPH_WARMUP + 2), memory=False)
            step = holder.get("step")
            peak = (
                int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" and r["status"] == "ok" else None
            )
            tokens = ts.batch * ts.seq_len
            rows.append(
                {
                    "kind": "train-step",
                    "mixer": name,
                    "mode": step.path if step else path,
                    "requested": path,
                    "fallback": step.fallback if step else None,
                    **asdict(ts),
                    "heads": cfg.heads,
                    **r,
                    "peak_mem_bytes": peak,
                    "tokens_per_s": 1e3 * tokens / r["median_ms"] if r["median_ms"] else None,
                }
            )
            holder.clear()
            _free(device)
    return rows
