"""Times the delta-rule paths (fwd+bwd, eager and CUDA-graph replay; the reference at T 256
only) at the sweep's shapes, and prints one JSON line per (path, shape). The project
kernel is timed with its walks over value blocks of 32 and of 16 columns
(`triton_delta_rule@walkN`, `DeltaRuleConfig(walk_block=N)`) and with `_backward_chunk` as one
kernel instead of two (`triton_delta_rule@one_kernel`): these rows set its defaults
(slabench/kernels/delta_rule/fused.py).

    python scripts/delta-paths.py [B,T,H,Dk,Dv ...]     (default: SHAPES)
"""

from __future__ import annotations

import json
import sys
from functools import partial

import torch
import torch.nn.functional as F

from slabench.kernels import dispatch
from slabench.kernels.delta_rule.fused import DeltaRuleConfig, delta_rule_fused
from slabench.runners import timing

# (B, T, H, Dk, Dv): the sweep at d_model 128, 8 heads (gdn keys 16, values 32 wide), 65536 tokens
# per call, and its extra B64 T256 shape.
SHAPES = [
    (64, 256, 8, 16, 32),
    (256, 256, 8, 16, 32),
    (16, 4096, 8, 16, 32),
    (4, 16384, 8, 16, 32),
    (1, 65536, 8, 16, 32),
]


def main(shapes):
    for shape in shapes:
        B, T, H, Dk, Dv = shape
        q, k = (
            F.normalize(torch.randn(B, T, H, Dk, device="cuda"), dim=-1).bfloat16().requires_grad_() for _ in range(2)
        )
        v = torch.randn(B, T, H, Dv, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        g = (F.logsigmoid(torch.randn(B, T, H, device="cuda") + 3) / 16).requires_grad_()
        beta = torch.rand(B, T, H, device="cuda", dtype=torch.bfloat16).requires_grad_()
        do = torch.randn_like(v)
        paths = [
            (f"triton_delta_rule@walk{n}", partial(delta_rule_fused, config=DeltaRuleConfig(walk_block=n)))
            for n in (32, 16)
        ]
        one = DeltaRuleConfig(split_backward=False)
        paths.append(("triton_delta_rule@one_kernel", partial(delta_rule_fused, config=one)))
        paths += [
            (p, fn)
            for p, fn in dispatch.OPS["delta_rule"].candidates
            if not p.startswith("triton_") and (T <= 256 or p != "reference")
        ]  # fla's kernels and the reference; the project kernel is timed above
        for path, fn in paths:
            args = (q, k, v, g, beta)

            def step(fn=fn, args=args, do=do):
                o, _ = fn(*args, args[0].shape[-1] ** -0.5, False)
                return torch.autograd.grad(o, args, do)

            row = {"path": path, "shape": "B{} T{} H{} Dk{} Dv{}".format(*shape)}
            try:
                row["eager_ms"] = timing.measure(step, "cuda", memory=False).median_ms
                row["graph_ms"] = timing.measure(timing.cuda_graph(step, "cuda"), "cuda", memory=False).median_ms
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([tuple(int(x) for x in a.split(",")) for a in sys.argv[1:]] or SHAPES)
