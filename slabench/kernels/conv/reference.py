"""The small layers around a recurrent kernel, as ops with fused paths: short conv and gated norm.

    short_conv(x, weight) = silu(causal depthwise conv of x over time)
        x [B, T, C], weight [C, W] (nn.Conv1d's [C, 1, W] squeezed) -> [B, T, C]
    rms_norm_gated(x, g, weight, eps) = x / rms(x) * weight * silu(g)      (g None: no gate)
        x, g [..., D], weight [D] -> [..., D]; the rms is over the last dim

At synthetic-task sizes these cost more than the recurrence itself when built from ATen ops
(on an H100 the depthwise conv alone took 125 us of gla's 1088 us fwd+bwd at B64 T256 H8 D16,
`slabench profile gla`), so `dispatch` runs fla's fused Triton kernels on CUDA
(fla.modules.causal_conv1d, fla.modules.norm) and these references elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def short_conv_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(causal depthwise conv): x [B, T, C], weight [C, W] -> [B, T, C]."""
    T, W = x.shape[1], weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :].to(x.dtype), padding=W - 1, groups=x.shape[-1])  # [B, C, T+W-1]
    return F.silu(y[..., :T].transpose(1, 2))


def rms_norm_gated_reference(x: torch.Tensor, g: torch.Tensor | None, weight: torch.Tensor,
                             eps: float) -> torch.Tensor:
    """x / rms(x) * weight (* silu(g)): x, g [..., D], weight [D] -> [..., D]."""
    y = F.rms_norm(x, (x.shape[-1],), weight, eps)
    return y if g is None else y * F.silu(g)
