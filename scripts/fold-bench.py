"""Runs per GPU-hour: single runs (CUDA-graph step) vs folds of N (captured folded step) on the quick
preset's MQAR model at lr 1e-3, STEPS steps with their evaluations and no early stop. The first
single run compiles; 4 more are timed one after another, then each fold twice: its first use
(compiles at the fold's shapes, capture) and again, the steady state. One JSON line per case
(also appended to $OUT/fold-bench.jsonl).

    python scripts/fold-bench.py [MIXER,... [N,N,...]]      (default: gla 4,8,16)
    env: DEV (cuda), STEPS (300), BATCH (the preset's 128), OUT (/tmp)
"""

import json
import os
import sys
import time
from dataclasses import replace

from slabench.config import expand_grid, load_preset
from slabench.runners.batched import train_batched
from slabench.runners.train import train

DEV = os.environ.get("DEV", "cuda")
STEPS = int(os.environ.get("STEPS", 300))
BATCH = int(os.environ.get("BATCH", 0))  # 0: the quick preset's batch
mixers = sys.argv[1].split(",") if len(sys.argv) > 1 else ["gla"]
Ns = [int(n) for n in (sys.argv[2].split(",") if len(sys.argv) > 2 else ["4", "8", "16"])]
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "fold-bench.jsonl"), "a")
_, specs = expand_grid(load_preset("quick"))


def emit(**row):
    print(json.dumps(row), flush=True)
    out.write(json.dumps(row) + "\n")
    out.flush()


for mixer in mixers:
    runs = [
        replace(s, train=replace(s.train, steps=STEPS, stop_at=0.0, batch_size=BATCH or s.train.batch_size))
        for s in specs
        if s.task.name == "mqar" and s.model.name == mixer and s.train.lr == 1e-3
    ]
    runs = [replace(runs[0], seed=i) for i in range(max(Ns))]
    t = time.perf_counter()
    r = train(runs[0], DEV)
    emit(mixer=mixer, case="compile+first single", s=round(time.perf_counter() - t, 2), path=r["train_path"])
    t = time.perf_counter()
    singles = [train(s, DEV) for s in runs[:4]]
    dt = time.perf_counter() - t
    emit(
        mixer=mixer,
        batch=runs[0].train.batch_size,
        N=1,
        wall_s=round(dt, 3),
        per_run_s=round(dt / 4, 3),
        runs_per_hour_1500=round(3600 / (dt / 4 * 1500 / STEPS)),
        path=singles[0]["train_path"],
        test_acc=[round(x["metrics"]["test_acc"], 4) for x in singles],
    )
    for n in Ns:
        try:
            t = time.perf_counter()
            train_batched(runs[:n], DEV)  # the fold's first use: kernels at its shapes compile, its step is captured
            first = time.perf_counter() - t
            t = time.perf_counter()
            recs = train_batched(runs[:n], DEV)
            dt = time.perf_counter() - t
            recs = sorted(recs, key=lambda r: r["seed"])
            row = dict(
                mixer=mixer,
                batch=runs[0].train.batch_size,
                N=n,
                first_wall_s=round(first, 3),
                wall_s=round(dt, 3),
                per_run_s=round(dt / n, 3),
                runs_per_hour_1500=round(3600 / (dt / n * 1500 / STEPS)),
                path=recs[0]["train_path"],
                fallback=recs[0].get("train_path_fallback"),
                test_acc=[round(x["metrics"]["test_acc"], 4) for x in recs][:8],
                statuses=sorted({x["status"] for x in recs}),
            )
            if n >= 4:
                row["max_abs_acc_diff_vs_single_first4"] = round(
                    max(abs(a["metrics"]["test_acc"] - b["metrics"]["test_acc"]) for a, b in zip(recs[:4], singles)), 5
                )
            emit(**row)
        except Exception as e:
            emit(mixer=mixer, N=n, error=f"{type(e).__name__}: {str(e)[:300]}")
