"""Times the delta rule's two project forms, the six chunk-parallel kernels (`triton_delta_rule`)
and the one-program-per-head short form (`triton_delta_rule_short@wN`, N warps for both of its
kernels), fwd+bwd in bf16, eager and CUDA-graph replay, checks each against the float64 chunked
reference on the same rounded inputs, and prints one JSON line per (form, shape). The short form's
rows at head dims 64 and 128 set how wide a head dispatch offers it (`SHORT_HEAD_DIM`), its rows by
warps its default (`DeltaRuleShortConfig`).

    python scripts/delta-short-bench.py [B,T,H,Dk,Dv ...]     (default: SHAPES)
"""

from __future__ import annotations

import json
import sys
from functools import partial

import torch
import torch.nn.functional as F

from slabench.kernels.delta_rule.fused import delta_rule_fused
from slabench.kernels.delta_rule.reference import delta_rule_chunk
from slabench.kernels.delta_rule.short import DeltaRuleShortConfig, delta_rule_short
from slabench.kernels.dispatch import rel_rms
from slabench.runners import timing

# (B, T, H, Dk, Dv): gdn at d_model 128, 8 heads (keys 16, values 32 wide) at the sweep's short
# shapes, then wider heads at the same tokens per call.
SHAPES = [
    (64, 256, 8, 16, 32),
    (256, 256, 8, 16, 32),
    (64, 1024, 8, 16, 32),
    (64, 256, 2, 64, 64),
    (64, 256, 1, 128, 128),
]
FORMS = [("triton_delta_rule", delta_rule_fused)] + [
    (f"triton_delta_rule_short@w{n}", partial(delta_rule_short, config=DeltaRuleShortConfig(n, n))) for n in (2, 4, 8)
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
        args = (q, k, v, g, beta)
        exact = [x.detach().double().requires_grad_() for x in args]  # the reference sees the rounded inputs
        o_ref, _ = delta_rule_chunk(*exact, Dk**-0.5)
        ref = [o_ref, *torch.autograd.grad(o_ref, exact, do.double())]
        for form, fn in FORMS:

            def step(fn=fn, args=args, do=do):
                o, _ = fn(*args, args[0].shape[-1] ** -0.5, False)
                return [o, *torch.autograd.grad(o, args, do)]

            row = {"form": form, "shape": "B{} T{} H{} Dk{} Dv{}".format(*shape)}
            try:
                out = step()
                row["err_o"] = rel_rms(out[0], ref[0])
                row["err_grad"] = max(rel_rms(a, b) for a, b in zip(out[1:], ref[1:]))  # q, k, v, g, beta
                eager = timing.measure(step, "cuda")
                row["eager_ms"], row["peak_mib"] = eager.median_ms, eager.peak_mem_bytes / 2**20
                row["graph_ms"] = timing.measure(timing.cuda_graph(step, "cuda"), "cuda", memory=False).median_ms
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([tuple(int(x) for x in a.split(",")) for a in sys.argv[1:]] or SHAPES)
