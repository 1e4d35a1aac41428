"""The SLA head gate, op 'sla_gate': softmax over heads of low-rank logits, scaling each head.

    sla_gate(src, x, w_down, w_up, b_up, tau) -> (x * softmax(low-rank logits of src / tau)[..., None], gates)
    sla_gate(src, None, ..., l2_eps=eps): x is src's heads L2-normalised (op 'sla_gate_l2')

`reference.py` holds the plain-torch gate, `fused.py` the project's Triton kernel (forward and
backward in one pass over the rows each); fla has no such op. The dims a call specialises on
are (C, H, D, R, x is src). `kind="sigmoid"` (an independent sigmoid per head, the control
without competition between heads) is its own op, 'sla_gate_sigmoid', with the reference as its
only path: the Triton kernel computes the softmax, and a record then names the path that ran.
'sla_gate_l2' is the softmax gate scaling src's own heads after an L2 norm, the feature map of GDN
and DeltaNet, in the same kernel's one pass (the sigmoid kind takes the L2 norm's op, then its gate).
"""

from __future__ import annotations

import torch

from slabench.kernels.dispatch import PROBE_T, Op, call
from slabench.kernels.norm import l2norm
from slabench.kernels.sla_gate.fused import sla_gate_l2_triton, sla_gate_triton
from slabench.kernels.sla_gate.reference import sla_gate_l2_reference, sla_gate_reference, sla_gate_sigmoid_reference


def _probe(device, dtype, dims):
    """Small inputs, PROBE_T long; float32 weights, as under autocast."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    C, H, D, R, same = dims
    src, x = torch.randn(2, PROBE_T, C, generator=gen), torch.randn(2, PROBE_T, H, D, generator=gen)
    w_down, w_up = torch.randn(R, C, generator=gen) / C**0.5, torch.randn(H, R, generator=gen) / R**0.5
    b_up = torch.randn(H, generator=gen)
    return [src.to(device, dtype), None if same else x.to(device, dtype)] + [
        w.to(device, torch.float32) for w in (w_down, w_up, b_up)
    ], {"tau": 0.7}


def _dims(args) -> tuple[int, int, int, int, bool]:
    """(C, H, D, R, x is src) of src [B, T, C], x [B, T, H, D] or None, W_up [H, R]."""
    src, x, _, w_up = args[:4]
    H, R = w_up.shape
    return src.shape[-1], H, src.shape[-1] // H if x is None else x.shape[-1], R, x is None


SLA_GATE = Op(
    "sla_gate",
    [("triton_sla_gate", sla_gate_triton), ("reference", sla_gate_reference)],
    _probe,
    dims_of=_dims,
    default_dims=(40, 5, 8, 8, True),
    returns_state=False,
)

SLA_GATE_SIGMOID = Op(
    "sla_gate_sigmoid",
    [("reference", sla_gate_sigmoid_reference)],
    _probe,
    dims_of=_dims,
    default_dims=(40, 5, 8, 8, True),
    returns_state=False,
)

SLA_GATE_L2 = Op(
    "sla_gate_l2",
    [("triton_sla_gate_l2", sla_gate_l2_triton), ("reference", sla_gate_l2_reference)],
    lambda device, dtype, dims: (_probe(device, dtype, dims)[0], {"tau": 0.7, "eps": 1e-6}),
    dims_of=_dims,
    default_dims=(40, 5, 8, 8, True),
    returns_state=False,
)

GATE_KINDS = {"softmax": "sla_gate", "sigmoid": "sla_gate_sigmoid"}  # gate kind -> op


def sla_gate(
    src: torch.Tensor,
    x: torch.Tensor | None,
    w_down: torch.Tensor,
    w_up: torch.Tensor,
    b_up: torch.Tensor,
    tau: float,
    kind: str = "softmax",
    l2_eps: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SLA head gate: gates = softmax((src W_down^T W_up^T + b_up) / tau over H), y = x * gates;
    kind 'sigmoid': gates = sigmoid(same logits / tau - log(H - 1)) per head (`reference.py`).

    src [B, T, C], x [B, T, H, D] (None: src split into H heads), W_down [R, C], W_up [H, R],
    b_up [H] -> (y [B, T, H, D], gates [B, T, H] float32). l2_eps: x (must be None) is src's heads
    L2-normalised, x / sqrt(|x|^2 + l2_eps), as `kernels.l2norm` computes them."""
    if l2_eps is None:
        return call(GATE_KINDS[kind], src, x, w_down, w_up, b_up, tau=tau)
    if kind == "softmax":
        return call("sla_gate_l2", src, x, w_down, w_up, b_up, tau=tau, eps=l2_eps)
    heads = l2norm(src.unflatten(-1, (w_up.shape[0], -1)), eps=l2_eps)  # [B, T, H, D]
    return call(GATE_KINDS[kind], src, heads, w_down, w_up, b_up, tau=tau)


__all__ = [
    "GATE_KINDS",
    "SLA_GATE",
    "SLA_GATE_L2",
    "SLA_GATE_SIGMOID",
    "sla_gate",
    "sla_gate_reference",
    "sla_gate_sigmoid_reference",
]
