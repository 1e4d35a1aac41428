"""Where a folded step's time goes, on the quick preset's MQAR model: per step, drawing the members'
batches, the step (captured on CUDA) and both, for one run (`TrainStep`) and for folds of N
(`FoldStep`), then torch.profiler tables of 5 eager steps of each (by op, and by op and input
shapes). Prints one JSON line per N.

    python scripts/fold-profile.py [MIXER [N,N,...]]      (default: gla 1,8)
    env: DEV (cuda), REPS (timed steps, 50), PROFILE (1: print the tables)
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch.profiler import ProfilerActivity, profile

from slabench.config import expand_grid, load_preset
from slabench.runners.batched import FoldStep, _member
from slabench.runners.data import hash_multipliers, row_hashes, seeded_generator, training_batches
from slabench.runners.step import FoldedAdamW, TrainStep, make_optimizer
from slabench.runners.train import VAL_SEED

DEV = torch.device(os.environ.get("DEV", "cuda"))
PATH = "cuda-graph" if DEV.type == "cuda" else "eager"
AUTOCAST = torch.bfloat16 if DEV.type == "cuda" else None
REPS = int(os.environ.get("REPS", 50))


def ms(fn: Callable[[], object], n: int) -> float:
    """Mean wall ms of fn over n back-to-back calls, synced before and after: steps overlap as in
    training. (`runners.timing.measure` starts every call on an idle device, for single ops.)"""
    if DEV.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if DEV.type == "cuda":
        torch.cuda.synchronize()
    return round((time.perf_counter() - t) / n * 1e3, 3)


def setup(spec, task, n: int, held_out, mult):
    """(draw the next [N, B, T] batches or [B, T] for n = 1, make a step on a path)."""
    cfg = spec.train
    if n == 1:
        torch.manual_seed(spec.seed)
        model = spec.model.build(task.vocab_size, task.seq_len).to(DEV)
        batches, _ = training_batches(task, cfg, spec.seed, DEV, held_out, mult)

        def draw():
            b = next(batches)
            row_hashes(b.inputs, mult)
            return b.inputs, b.labels

        def make(path: str):
            opt = make_optimizer(model, cfg, DEV, capturable=path == "cuda-graph")
            return TrainStep(model, opt, cfg, DEV, AUTOCAST, path)

        return draw, make
    members = [
        _member(replace(spec, seed=i), task, task.vocab_size, task.seq_len, DEV, held_out, mult) for i in range(n)
    ]
    opt = FoldedAdamW([list(m.model.parameters()) for m in members], cfg)

    def draw():
        bs = [next(m.batches) for m in members]
        x, y = torch.stack([b.inputs for b in bs]), torch.stack([b.labels for b in bs])  # [N, B, T]
        row_hashes(x.flatten(0, 1), mult)
        return x, y

    return draw, lambda path: FoldStep(members[0].model, opt, DEV, AUTOCAST, path)


def measure(mixer: str, n: int, spec, task, held_out, mult) -> None:
    draw, make = setup(spec, task, n, held_out, mult)
    step = make(PATH)
    x, y = draw()
    for _ in range(6):  # warm-up and capture
        step(x, y)
    row = {
        "mixer": mixer,
        "N": n,
        "path": step.path,
        "fallback": step.fallback,
        "data_ms": ms(draw, 20),
        "step_ms": ms(lambda: step(x, y), REPS),
        "data_plus_step_ms": ms(lambda: step(*draw()), REPS),
    }
    row["per_member_ms"] = round(row["data_plus_step_ms"] / n, 3)
    print(json.dumps(row), flush=True)
    if os.environ.get("PROFILE", "1") == "1":
        eager = make("eager")
        for _ in range(3):
            eager(x, y)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEV.type == "cuda" else [])
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(5):
                eager(x, y)
            if DEV.type == "cuda":
                torch.cuda.synchronize()
        print(f"==== eager profile {mixer} N={n} (5 steps)")
        sort = "cuda_time_total" if DEV.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=35))
        print("==== the same by op and input shapes (which call each copy and cast serves)")
        print(prof.key_averages(group_by_input_shape=True).table(sort_by=sort, row_limit=60))


def main(mixer: str, ns: list[int]) -> None:
    _, specs = expand_grid(load_preset("quick"))
    spec = next(s for s in specs if s.task.name == "mqar" and s.model.name == mixer)
    spec = replace(spec, seed=0, train=replace(spec.train, stop_at=0.0))
    task = spec.task.build()
    mult = hash_multipliers(task.seq_len, DEV)
    held_out = row_hashes(task.sample(spec.train.val_size, seeded_generator(VAL_SEED, DEV), DEV).inputs, mult)
    for n in ns:
        measure(mixer, n, spec, task, held_out, mult)


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "gla",
        [int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "1,8").split(",")],
    )
