"""Gated linear attention: the ops 'gla' (per-channel decay) and 'simple_gla' (per-head or no decay).

    gla(q, k, v, g=None, scale=None, output_final_state=False) -> (o, state)
        S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,  o_t = scale * q_t S_t
        g: None (linear attention), [B, T, H] (per-head decay: RetNet) or [B, T, H, Dk] (GLA)

`reference.py` holds the chunked form and the step-by-step oracle, `short.py` the project's
Triton kernel (one program per batch and head), `fla_adapters.py` fla's kernels. Candidates,
in order: the short kernel for T <= 1024 and keys <= 32 wide (<= 64 for 'simple_gla', whose
per-head decays need no [C, C, Dk] tensor) and values up to 4x that (split into blocks, one
program each), where fla's chunk kernels are bound by their launches; fla's chunk kernel
native to the op; fla's fused recurrent kernel; the reference.
The dims a call specialises on are (Dk, Dv, T <= SHORT_T): fla 0.6.0's chunk_gla backward
fails to compile for keys 4 wide (d_model 64, 8 heads) while 8 and up work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slabench.kernels.dispatch import PROBE_T, Op, call
from slabench.kernels.gla.fla_adapters import (
    fla_chunk_gla,
    fla_chunk_gla_expanded,
    fla_chunk_simple_gla,
    fla_fused_recurrent_gla,
    fla_fused_recurrent_simple_gla,
)
from slabench.kernels.gla.reference import gla_chunk, gla_recurrent
from slabench.kernels.gla.short import SHORT_T, gla_short, unsuited, unsuited_per_head_decay


def gla_reference(q, k, v, g, scale, output_final_state):
    """`gla_chunk` in float32 on purpose: autocast is kept from lowering its matmuls."""
    with torch.autocast(q.device.type, enabled=False):
        return gla_chunk(q, k, v, g, scale, output_final_state)


def _probe(device, dtype, dims, per_channel: bool):
    """Small inputs, PROBE_T long with real decays."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    (B, T, H), (Dk, Dv) = (2, PROBE_T, 2), dims[:2]
    q, k, v = (torch.randn(B, T, H, d, generator=gen) for d in (Dk, Dk, Dv))
    shape = (B, T, H, Dk) if per_channel else (B, T, H)
    g = F.logsigmoid(torch.randn(*shape, generator=gen) + 3) / 4
    return [x.to(device, dtype) for x in (q, k, v)] + [g.to(device, torch.float32)], {"scale": Dk**-0.5}


def _dims(args) -> tuple[int, int, bool]:
    """(Dk, Dv, short): head dims of q [B, T, H, Dk], v [B, T, H, Dv], and T <= SHORT_T."""
    return args[0].shape[-1], args[2].shape[-1], args[0].shape[1] <= SHORT_T


GLA = Op(
    "gla",
    [
        ("triton_gla_short", gla_short),
        ("fla_chunk_gla", fla_chunk_gla),
        ("fla_fused_recurrent_gla", fla_fused_recurrent_gla),
        ("reference", gla_reference),
    ],
    lambda device, dtype, dims: _probe(device, dtype, dims, per_channel=True),
    dims_of=_dims,
    default_dims=(32, 32, True),
    only={"triton_gla_short": unsuited},
)
SIMPLE_GLA = Op(
    "simple_gla",
    [
        ("triton_gla_short", gla_short),
        ("fla_chunk_simple_gla", fla_chunk_simple_gla),
        ("fla_chunk_gla", fla_chunk_gla_expanded),
        ("fla_fused_recurrent_simple_gla", fla_fused_recurrent_simple_gla),
        ("reference", gla_reference),
    ],
    lambda device, dtype, dims: _probe(device, dtype, dims, per_channel=False),
    dims_of=_dims,
    default_dims=(32, 32, True),
    only={"triton_gla_short": unsuited_per_head_decay},
)


def gla(q, k, v, g=None, scale: float | None = None, output_final_state: bool = False):
    """Gated linear attention; per-channel g runs op 'gla', per-head or no decay op 'simple_gla'."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    op = "gla" if g is not None and g.dim() == 4 else "simple_gla"
    return call(op, q, k, v, g, scale, output_final_state)


__all__ = ["GLA", "SIMPLE_GLA", "gla", "gla_chunk", "gla_recurrent", "gla_reference"]
