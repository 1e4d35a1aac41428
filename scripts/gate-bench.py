"""Speed measurement: the fused SLA gate alone, fwd+bwd, against the unfused torch gate.

Times `sla_gate_triton` at each row block and warp count (`SLAGateConfig(block_rows, num_warps)`,
slabench/kernels/sla_gate/fused.py) and the reference (two nn.Linear, softmax, scaling: what the gate was before
it was fused), eager and CUDA-graph replay, bf16 activations with float32 weights as under
autocast. Prints one JSON line per (shape, path).

    python scripts/gate-bench.py [B,T,H,D,R,C ...]     (C 0: the gate scales src itself; default: SHAPES)
"""

from __future__ import annotations

import json
import sys
from functools import partial

import torch

from slabench.kernels.sla_gate.fused import SLAGateConfig, sla_gate_triton
from slabench.kernels.sla_gate.reference import sla_gate_reference
from slabench.runners import timing

# (B, T, H, D, R, C): the sweep's small and 4096 shapes (the key is H * D = 128 wide), gating q
# itself (gla, C 0) or a mapped q (linear: C = 128); the quick preset's models (4 heads of 16).
SHAPES = [
    (64, 256, 8, 16, 8, 0),
    (64, 256, 8, 16, 8, 128),
    (16, 4096, 8, 16, 8, 0),
    (16, 4096, 8, 16, 8, 128),
    (128, 128, 4, 16, 8, 0),
]


def main(shapes):
    for B, T, H, D, R, C in shapes:
        same, C = C == 0, C or H * D
        src = torch.randn(B, T, C, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        x = None if same else torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        ws = [torch.randn(*s, device="cuda", requires_grad=True) for s in ((R, C), (H, R), (H,))]
        dy = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
        leaves = [src] + ([] if same else [x]) + ws
        paths = [("reference", sla_gate_reference)]
        paths += [
            (f"triton@bn{n}w{w}", partial(sla_gate_triton, config=SLAGateConfig(block_rows=n, num_warps=w)))
            for n in (16, 32, 64, 128)
            for w in (2, 4, 8)
        ]
        for name, fn in paths:

            def step(fn=fn, src=src, x=x, ws=ws, leaves=leaves, dy=dy):
                with torch.autocast("cuda", torch.bfloat16):
                    y, _ = fn(src, x, *ws, 0.7)
                return torch.autograd.grad(y, leaves, dy)

            row = {"path": name, "shape": f"B{B} T{T} H{H} D{D} R{R} C{C}" + (" x=src" if same else "")}
            try:
                row["eager_ms"] = timing.measure(step, "cuda", memory=False).median_ms
                row["graph_ms"] = timing.measure(timing.cuda_graph(step, "cuda"), "cuda", memory=False).median_ms
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([tuple(int(v) for v in a.split(",")) for a in sys.argv[1:]] or SHAPES)
