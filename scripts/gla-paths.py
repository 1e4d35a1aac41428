"""Speed measurement: which path is fastest for the gla ops at the suite's shapes?

Times every fast candidate of 'gla' and 'simple_gla' (fwd+bwd, eager and CUDA-graph replay) at
the sweep's and the presets' shapes, whatever dispatch's shape rules say, and prints one JSON
line per (op, path, shape). The project's short-sequence kernel is timed at 1, 2 and 4 warps
(`triton_gla_short@wN`, `GLAShortConfig(num_warps=N)`): these rows set `SHORT_T` and the warps
in `_meta` (slabench/kernels/gla/short.py).

    python scripts/gla-paths.py [B,T,H,Dk,Dv ...]     (default: SHAPES)
"""

from __future__ import annotations

import json
import sys
from functools import partial

import torch
import torch.nn.functional as F

from slabench.kernels import dispatch
from slabench.kernels.gla.short import GLAShortConfig
from slabench.runners import timing

# (B, T, H, Dk, Dv): the sweep's small shape (gla keys are d_model/2 wide), the quick preset's MQAR
# and needle models (d_model 128, 4 heads), and two lengths of the sweep at 65536 tokens per call.
SHAPES = [
    (64, 256, 8, 8, 16),
    (128, 128, 4, 16, 32),
    (128, 256, 4, 16, 32),
    (64, 256, 2, 64, 64),
    (128, 512, 8, 8, 16),
    (64, 1024, 8, 8, 16),
    (32, 2048, 8, 8, 16),
    (16, 4096, 8, 8, 16),
    (8, 8192, 8, 16, 16),
]


def inputs(B, T, H, Dk, Dv, per_channel):
    q, k = (torch.randn(B, T, H, Dk, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    v = torch.randn(B, T, H, Dv, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = F.logsigmoid(torch.randn(B, T, H, *([Dk] if per_channel else []), device="cuda") + 3) / 16
    return q, k, v, g.requires_grad_()


def main(shapes):
    for op_name in ("gla", "simple_gla"):
        op = dispatch.OPS[op_name]
        for shape in shapes:
            q, k, v, g = inputs(*shape, per_channel=op_name == "gla")
            do = torch.randn_like(v)
            paths = [
                (f"{p}@w{w}", partial(fn, config=GLAShortConfig(num_warps=w))) if p == "triton_gla_short" else (p, fn)
                for p, fn in op.candidates[:-1]
                for w in ((1, 2, 4) if p == "triton_gla_short" else (None,))
            ]
            for path, fn in paths:

                def step(fn=fn, args=(q, k, v, g), do=do, scale=shape[3] ** -0.5):
                    o, _ = fn(*args, scale, False)
                    return torch.autograd.grad(o, args, do)

                row = {"op": op_name, "path": path, "shape": "B{} T{} H{} Dk{} Dv{}".format(*shape)}
                try:
                    row["eager_ms"] = timing.measure(step, "cuda", memory=False).median_ms
                    row["graph_ms"] = timing.measure(timing.cuda_graph(step, "cuda"), "cuda", memory=False).median_ms
                except Exception as e:
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([tuple(int(x) for x in a.split(",")) for a in sys.argv[1:]] or SHAPES)
