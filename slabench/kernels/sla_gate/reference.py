"""The SLA head gate in plain torch: a low-rank projection to one logit per head, softmax over
the heads, then each head of q (or k) scaled by its gate.

    logits = (src W_down^T) W_up^T + b_up     src: [B, T, C] -> [B, T, H]   (W_down: [R, C], W_up: [H, R])
    gates  = softmax(logits / tau, over H)
    y      = x * gates[..., None]              x: [B, T, H, D]; None means src itself, split into H heads
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sla_gate_reference(
    src: torch.Tensor, x: torch.Tensor | None, w_down: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [B, T, H, D], gates [B, T, H]) from src [B, T, C], x [B, T, H, D] or None, W_down [R, C],
    W_up [H, R], b_up [H]."""
    logits = F.linear(F.linear(src, w_down), w_up, b_up)  # [B, T, H]
    gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-1)  # [B, T, H]
    x = src.unflatten(-1, (w_up.shape[0], -1)) if x is None else x  # [B, T, H, D]
    return x * gates[..., None].to(x.dtype), gates
