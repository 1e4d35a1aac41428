"""Multi-GPU measurement: the same grid on 1 GPU and on every GPU of this host, with the local
pool and with Ray, and the speed-up in leaderboards/speed/multi-gpu.md.

Each of the four cases runs `slabench run` in a fresh output folder (nothing resumed), the GPUs
chosen by CUDA_VISIBLE_DEVICES (Ray, a local instance per case, sees the same ones), and is timed
from start to the last record. Kernels are compiled once first (one run of the grid), so no case
pays the Triton compile. The table: backend, GPUs, runs, wall seconds, runs per minute, speed-up
over one GPU with the same backend, and how many runs each GPU trained (from the records'
`environment.device_index`).

    python scripts/multi-gpu-bench.py                      # the quick preset, seed 0 only
    python scripts/multi-gpu-bench.py --seeds 0,1,2 --out leaderboards/speed/multi-gpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import torch

from slabench.config import PRESETS_DIR, expand_grid, load_grid_file
from slabench.runners.environment import device_name
from slabench.runners.output import md_table
from slabench.runners.records import load_records


def grid_file(preset: str, seeds: list[int], folder: Path) -> Path:
    """The preset with its seeds replaced (a subset keeps the measurement short)."""
    text = (PRESETS_DIR / f"{preset}.toml").read_text()
    lines = [f"seeds = {seeds}" if line.startswith("seeds =") else line for line in text.splitlines()]
    if lines == text.splitlines():
        sys.exit(f"preset {preset} sets no `seeds = [...]` line to replace")
    path = folder / f"{preset}.toml"
    path.write_text("\n".join(lines) + "\n")
    expand_grid(load_grid_file(path))  # still a valid grid
    return path


def timed_run(grid: Path, out: Path, backend: str, gpus: int) -> tuple[float, Counter]:
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ",".join(map(str, range(gpus)))}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "slabench", "run", str(grid), "--out", str(out), "--backend", backend, "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some run failed, still a measurement
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}")
    records = load_records(out).records.values()
    return seconds, Counter(r["environment"].get("device_index") for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the preset to run")
    parser.add_argument("--backends", default="local,ray")
    parser.add_argument("--out", default="leaderboards/speed/multi-gpu.md")
    args = parser.parse_args()
    n = torch.cuda.device_count()
    if n < 2:
        sys.exit(f"this measurement needs a host with 2 or more GPUs; {n} visible")
    with tempfile.TemporaryDirectory() as tmp:
        grid = grid_file(args.preset, [int(s) for s in args.seeds.split(",")], Path(tmp))
        timed_run(grid, Path(tmp) / "warm", "local", 1)  # compile every kernel once
        rows, base = [], {}
        for backend in args.backends.split(","):
            for gpus in (1, n):
                seconds, per_gpu = timed_run(grid, Path(tmp) / f"{backend}-{gpus}", backend, gpus)
                runs = sum(per_gpu.values())
                base.setdefault(backend, seconds)
                spread = ", ".join(f"{k}: {v}" for k, v in sorted(per_gpu.items(), key=lambda kv: str(kv[0])))
                rows.append(
                    [backend, str(gpus), str(runs), f"{seconds:.0f}", f"{60 * runs / seconds:.1f}",
                     f"{base[backend] / seconds:.2f}x", spread]
                )  # fmt: skip
                print(json.dumps({"backend": backend, "gpus": gpus, "seconds": seconds, "per_gpu": str(per_gpu)}))
    header = ["backend", "GPUs", "runs", "wall s", "runs / min", "speed-up", "runs per GPU (index: runs)"]
    text = (
        f"# Multi-GPU grid throughput\n\n`python scripts/multi-gpu-bench.py --preset {args.preset} --seeds "
        f"{args.seeds}` on {n} x {device_name('cuda:0')}, torch {torch.__version__}, {date.today()}: the same "
        f"grid on one GPU and on all {n}, each case from empty records, kernels compiled beforehand.\n\n"
        + md_table(header, rows)
        + "\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
