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
(B, T, H, D) are timed as given (e.g. B64 T256 H8 D16, a synthetic-task size). A shape that runs
out of memory is recorded as 'oom', one that fails otherwise as 'failed', and the sweep goes on.

The training step (optional) is the standard MQAR model (2 layers, d_model 128, seq_len 256,
batch 256, MQAR's default vocabulary) through `runners.step.TrainStep`, eager and CUDA-graph;
data sampling is not timed.

The modules, in the order a sweep uses them: `config` (what is swept), `cases` (timing each
case), `analysis` (SLA overhead ratios, the sla-gla vs attention crossover, scaling slopes),
`targets` (bounds on those, from `targets.toml` or a user's file) and `output` (<out>/<device
slug>.md, .csv, .json and log-log plots).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import torch

from slabench.runners import timing
from slabench.runners.sweep.analysis import summarise
from slabench.runners.sweep.cases import mixer_fns, time_mixers, time_train_steps
from slabench.runners.sweep.config import Shape, SweepConfig, TrainStepShape, default_config
from slabench.runners.sweep.output import render, write_outputs
from slabench.runners.sweep.targets import Target, evaluate, load_targets

__all__ = [
    "Shape",
    "SweepConfig",
    "Target",
    "TrainStepShape",
    "analyse",
    "default_config",
    "load_targets",
    "mixer_fns",
    "render",
    "run_sweep",
    "write_outputs",
]


def analyse(result: dict[str, Any], targets: tuple[Target, ...]) -> dict[str, Any]:
    """The summary of a result: `analysis.summarise` and the targets checked against it."""
    summary = summarise(result)
    summary["targets"] = evaluate(targets, result, summary["slopes"])
    return summary


def run_sweep(
    cfg: SweepConfig,
    on_case: Callable[[str], None] | None = None,
    on_partial: Callable[[dict[str, Any]], None] | None = None,
    targets: tuple[Target, ...] | None = None,
) -> dict[str, Any]:
    """The sweep's result (machine, config, rows, train_steps, summary). on_partial(result so
    far) after each shape and at the end: a sweep cut short still leaves its finished shapes.
    targets: those of `targets.toml` unless given (`load_targets(path)`)."""
    targets = load_targets() if targets is None else targets

    def result(rows, train_rows):
        used: dict[str, set[str]] = {}  # every path any case ran (each case resets dispatch's record)
        for r in rows + train_rows:
            for op, names in (r.get("kernel_paths") or {}).items():
                used.setdefault(op, set()).update(names.split(","))
        out = {
            "schema": 1,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {
                **timing.machine(cfg.device),
                "kernel_paths": {op: ",".join(sorted(n)) for op, n in sorted(used.items())},
            },
            "config": {**asdict(cfg), "shapes": [list(s) for s in cfg.shapes]},
            "rows": rows,
            "train_steps": train_rows,
        }
        out["summary"] = analyse(out, targets)
        return out

    if torch.device(cfg.device).type == "cuda":
        torch.cuda.set_device(torch.device(cfg.device).index or 0)  # events and streams use the current device
    partial = (lambda rows: on_partial(result(rows, []))) if on_partial else None
    rows = time_mixers(cfg, on_case, partial)
    final = result(rows, time_train_steps(cfg, on_case) if cfg.train_step else [])
    if on_partial:
        on_partial(final)
    return final
