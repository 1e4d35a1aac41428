"""The gated delta rule (Gated DeltaNet), op 'delta_rule', fla's convention.

    delta_rule(q, k, v, g, beta, scale=None, output_final_state=False) -> (o, state)
        q, k [B, T, H, Dk] already L2-normalised, v [B, T, H, Dv], g, beta [B, T, H]

`reference.py` holds the chunked form and the step-by-step oracle, `fused.py` the project's
Triton kernel (seven kernels, chunk-parallel), `fla_adapters.py` fla's kernels. Candidates, in
order: the project kernel for head dims <= 128, before fla's chunk_gated_delta_rule, whose
backward fla-core 0.6.0 refuses on Hopper under Triton < 3.7.1; fla's fused recurrent kernel; the
reference. The dims a call specialises on are the head dims (Dk, Dv) and whether the project
kernel would walk the call in segments (few long sequences: `fused.walks_in_segments`), so that
path is probed, at a length that segments it, before any call uses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slabench.kernels.delta_rule.fla_adapters import fla_chunk_gated_delta_rule, fla_fused_recurrent_gated_delta_rule
from slabench.kernels.delta_rule.fused import SEGMENT, C, delta_rule_fused, unsuited, walks_in_segments
from slabench.kernels.delta_rule.reference import delta_rule_chunk, delta_rule_recurrent
from slabench.kernels.dispatch import PROBE_T, Op, call


def delta_rule_reference(q, k, v, g, beta, scale, output_final_state):
    """`delta_rule_chunk` in float32 on purpose: autocast is kept from lowering its matmuls."""
    with torch.autocast(q.device.type, enabled=False):
        return delta_rule_chunk(q, k, v, g, beta, scale, output_final_state)


def _probe(device, dtype, dims):
    """Small inputs with real decays, PROBE_T long, or 4 segments long for a call that walks in
    segments (B 2 x H 2 programs: few enough to segment on any GPU of 32 SMs or more)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    (B, T, H), (Dk, Dv) = (2, 4 * SEGMENT * C if dims[2] else PROBE_T, 2), dims[:2]
    q, k = (F.normalize(torch.randn(B, T, H, Dk, generator=gen), dim=-1) for _ in range(2))
    v = torch.randn(B, T, H, Dv, generator=gen)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen) + 3) / 4
    beta = torch.rand(B, T, H, generator=gen)
    return [x.to(device, dtype) for x in (q, k, v)] + [g.to(device, torch.float32), beta.to(device, dtype)], {
        "scale": Dk**-0.5
    }


DELTA_RULE = Op(
    "delta_rule",
    [
        ("triton_delta_rule", delta_rule_fused),
        ("fla_chunk_gated_delta_rule", fla_chunk_gated_delta_rule),
        ("fla_fused_recurrent_gated_delta_rule", fla_fused_recurrent_gated_delta_rule),
        ("reference", delta_rule_reference),
    ],
    _probe,
    dims_of=lambda args: (args[0].shape[-1], args[2].shape[-1], walks_in_segments(args[0], args[2])),
    default_dims=(32, 32, False),
    only={"triton_delta_rule": unsuited},
)


def delta_rule(q, k, v, g, beta, scale: float | None = None, output_final_state: bool = False):
    """Gated delta rule (fla's chunk_gated_delta_rule with use_qk_l2norm_in_kernel=False)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return call("delta_rule", q, k, v, g, beta, scale, output_final_state)


__all__ = ["DELTA_RULE", "delta_rule", "delta_rule_chunk", "delta_rule_recurrent", "delta_rule_reference"]
