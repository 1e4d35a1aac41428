"""What a first training run compiles: the Triton kernels in an empty cache after a short run of
the quick preset's MQAR model, counted by kernel name. A name compiled more than once was built
for several specialisations: Triton specialises integer arguments on divisibility by 16 (and on
== 1), so a dispatch probe and training at lengths of different divisibility (the probe's
`dispatch.PROBE_T` against a T given here) each compile their own variant.
Prints one JSON line: wall time, the kernel paths the run took, and the count per kernel name.

    TRITON_CACHE_DIR=$(mktemp -d) python scripts/compile-variants.py [MIXER [T]]   (default: gla 128)
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.runners.train import train

mixer, seq_len = (sys.argv[1:] + ["gla", "128"])[:2]
cache = Path(os.environ["TRITON_CACHE_DIR"])  # must start empty: every entry is this run's
if any(cache.iterdir()):
    sys.exit(f"TRITON_CACHE_DIR={cache} is not empty")
spec = RunSpec(
    "compile-variants",
    TaskSpec("mqar", (("num_kv_pairs", 16), ("seq_len", int(seq_len)), ("vocab_size", 256))),
    ModelSpec(mixer, (("d_model", 128), ("mlp", False), ("n_heads", 4), ("n_layers", 2))),
    TrainSpec(steps=10, batch_size=128, eval_every=10, val_size=128, test_size=128, dtype="bfloat16"),
    0,
)
start = time.perf_counter()
record = train(spec, "cuda")
wall = time.perf_counter() - start
names = Counter()
for meta in cache.rglob("*.json"):  # one metadata file per compiled kernel, beside its binary
    if meta.name.startswith("__grp__") or meta.name.endswith(".autotune.json"):
        continue
    name = json.loads(meta.read_text()).get("name")
    if name:
        names[name] += 1
print(
    json.dumps(
        {
            "mixer": mixer,
            "seq_len": int(seq_len),
            "wall_s": round(wall, 1),
            "status": record["status"],
            "kernel_paths": record["kernel_paths"],
            "compiled": sum(names.values()),
            "kernels": dict(sorted(names.items())),
        }
    )
)
