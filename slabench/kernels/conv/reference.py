"""The short convolution in plain torch:

short_conv(x, weight) = silu(causal depthwise conv of x over time)
    x [B, T, C], weight [C, W] (nn.Conv1d's [C, 1, W] squeezed) -> [B, T, C]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def short_conv_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(causal depthwise conv): x [B, T, C], weight [C, W] -> [B, T, C]."""
    T, W = x.shape[1], weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :].to(x.dtype), padding=W - 1, groups=x.shape[-1])  # [B, C, T+W-1]
    return F.silu(y[..., :T].transpose(1, 2))
