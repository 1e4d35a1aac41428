"""The SLA head gate in plain torch: a low-rank projection to one logit per head, softmax over
the heads, then each head of q (or k) scaled by its gate.

    logits = (src W_down^T) W_up^T + b_up     src: [B, T, C] -> [B, T, H]   (W_down: [R, C], W_up: [H, R])
    gates  = softmax(logits / tau, over H)
    y      = x * gates[..., None]              x: [B, T, H, D]; None means src itself, split into H heads

With an L2 feature map (GDN, DeltaNet) the heads the gate scales are src's heads normalised first,
x = src_h / sqrt(|src_h|^2 + eps): `sla_gate_l2_reference`, the op the fused kernel takes in one
pass (it reads src once instead of src and a normalised copy).

The sigmoid kind, the non-competing control, gives each head its own gate from the same logits:

    gates  = sigmoid(logits / tau - log(H - 1))

This is head h's softmax gate with the other heads' logits held at zero, softmax_h(l) =
sigmoid(l_h - log(sum_{j != h} exp(l_j))): at zero logits both kinds give every head 1/H, with the same
slope g (1 - g), so the two start alike and differ only in that the softmax's heads compete. One head
means the constant gate 1 for both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from slabench.kernels.norm.reference import l2norm_reference


def _scale(src: torch.Tensor, x: torch.Tensor | None, gates: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, D] (None: src split into H heads) times gates [B, T, H] per head."""
    x = src.unflatten(-1, (gates.shape[-1], -1)) if x is None else x  # [B, T, H, D]
    return x * gates[..., None].to(x.dtype)


def sla_gate_reference(
    src: torch.Tensor, x: torch.Tensor | None, w_down: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [B, T, H, D], gates [B, T, H]) from src [B, T, C], x [B, T, H, D] or None, W_down [R, C],
    W_up [H, R], b_up [H]."""
    logits = F.linear(F.linear(src, w_down), w_up, b_up)  # [B, T, H]
    gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-1)  # [B, T, H]
    return _scale(src, x, gates), gates


def sla_gate_sigmoid_reference(
    src: torch.Tensor, x: torch.Tensor | None, w_down: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`sla_gate_reference` with an independent sigmoid per head, shifted by -log(H - 1)."""
    H = w_up.shape[0]
    shift = math.log(H - 1) if H > 1 else -math.inf
    logits = F.linear(F.linear(src, w_down), w_up, b_up)  # [B, T, H]
    gates = torch.sigmoid(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau - shift)  # [B, T, H]
    return _scale(src, x, gates), gates


def sla_gate_l2_reference(
    src: torch.Tensor, x: None, w_down: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor, tau: float, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`sla_gate_reference` scaling src's heads L2-normalised (x must be None): the gates read src raw."""
    if x is not None:
        raise ValueError("sla_gate_l2 scales src's own heads: x must be None")
    return sla_gate_reference(
        src, l2norm_reference(src.unflatten(-1, (w_up.shape[0], -1)), eps), w_down, w_up, b_up, tau
    )
