"""Gated DeltaNet's decay and write strength from one projection of x, op 'gdn_gates'.

    gdn_gates(ab, A_log, dt_bias) -> (g, beta)
        ab [..., 2H]: a in the first H columns, b in the last H
        g = -exp(A_log) * softplus(a + dt_bias) [..., H] float32,  beta = sigmoid(b) [..., H] in ab's dtype

`reference.py` holds the plain-torch chain, `fused.py` the project's Triton kernel (one kernel
each way; ATen takes about 17 small ones, two of them reductions over every row); fla has no
such op. The dims a call specialises on are (H,). Inside a batched run's vmap the reference runs
(A_log and dt_bias are per member).
"""

from __future__ import annotations

import torch

from slabench.kernels.dispatch import PROBE_T, Op, call
from slabench.kernels.gdn_gates.fused import gdn_gates_triton
from slabench.kernels.gdn_gates.reference import gdn_gates_reference


def _probe(device, dtype, dims):
    """Small inputs, PROBE_T long; float32 parameters at their initial ranges, as under autocast."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    (H,) = dims
    ab = torch.randn(2, PROBE_T, 2 * H, generator=gen)
    A_log = torch.rand(H, generator=gen).mul(16).clamp_min(1e-4).log()
    dt_bias = torch.rand(H, generator=gen) * 5 - 7
    return [ab.to(device, dtype), A_log.to(device), dt_bias.to(device)], {}


GDN_GATES = Op(
    "gdn_gates",
    [("triton_gdn_gates", gdn_gates_triton), ("reference", gdn_gates_reference)],
    _probe,
    dims_of=lambda args: (args[0].shape[-1] // 2,),  # (H,)
    default_dims=(8,),
    returns_state=False,
    compared=2,
)


def gdn_gates(ab: torch.Tensor, A_log: torch.Tensor, dt_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(g float32 [..., H], beta [..., H]) from the projection ab [..., 2H] = [a | b]."""
    return call("gdn_gates", ab, A_log, dt_bias)


__all__ = ["GDN_GATES", "gdn_gates", "gdn_gates_reference"]
