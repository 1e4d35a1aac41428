"""Gated DeltaNet's per-head decay and write strength in plain torch:

gdn_gates(ab, A_log, dt_bias) -> (g, beta)
    ab [..., 2H]: the projection of x, a in its first H columns, b in its last H
    g    = -exp(A_log) * softplus(a + dt_bias)     [..., H], float32 (the log decay)
    beta = sigmoid(b)                               [..., H], ab's dtype
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gdn_gates_reference(ab: torch.Tensor, A_log: torch.Tensor, dt_bias: torch.Tensor):
    """(g float32 [..., H], beta [..., H] in ab's dtype) from ab [..., 2H], A_log and dt_bias [H]."""
    a, b = ab.chunk(2, dim=-1)  # [..., H] each
    wide = torch.float64 if ab.dtype == torch.float64 else torch.float32
    g = -A_log.to(wide).exp() * F.softplus(a.to(wide) + dt_bias.to(wide))  # [..., H]
    return g, torch.sigmoid(b)
