"""The gated RMS norm in plain torch:

rms_norm_gated(x, g, weight, eps, out_dtype) = x / rms(x) * weight * silu(g)   (g None: no gate)
    x, g [..., D], weight [D] -> [..., D]; the rms is over the last dim
l2norm(x, eps) = x / sqrt(sum(x^2) + eps)                                 over the last dim
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm_gated_reference(
    x: torch.Tensor, g: torch.Tensor | None, weight: torch.Tensor, eps: float, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """x / rms(x) * weight (* silu(g)): x, g [..., D], weight [D] -> [..., D], in out_dtype if given."""
    y = F.rms_norm(x, (x.shape[-1],), weight, eps)
    y = y if g is None else y * F.silu(g)
    return y if out_dtype is None else y.to(out_dtype)


def l2norm_reference(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(sum(x^2) + eps) over the last dim, in x's dtype (the sum in float32 at least)."""
    x32 = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return (x32 * torch.rsqrt(x32.square().sum(-1, keepdim=True) + eps)).to(x.dtype)
